"""Metric rates per group (category, attack strategy, domain), as counts with intervals.

The definitions are the judge's (:data:`mosaic_gym.judge.metrics.METRICS`: which outcomes a
metric applies to, what it measures), so a figure here is the same figure ``mosaic eval``
prints, with its count and its Wilson interval added. A group where a metric applies to no
episode gets ``n = 0`` and is shown as "—", never as 0 %.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mosaic_gym.judge.metrics import METRICS
from mosaic_gym.report.stats import Rate

Row = Mapping[str, Any]

#: Ways to group outcomes: name -> the group of one outcome.
GROUPINGS: dict[str, Callable[[Row], str]] = {
    "category": lambda r: str(r["category"]),
    "attack": lambda r: str(r.get("attack") or "none"),
    "domain": lambda r: str(r.get("domain") or "?"),
}


def measured(row: Row, name: str) -> bool:
    """Whether metric ``name`` held in outcome ``row`` (whether it applies aside)."""
    _, _, measure = METRICS[name]
    return bool(measure(row))


def applies(row: Row, name: str) -> bool:
    _, condition, _ = METRICS[name]
    return bool(condition(row))


def rates(rows: Iterable[Row]) -> dict[str, Rate]:
    """Each metric of :data:`METRICS` over ``rows``."""
    rows = list(rows)
    result = {}
    for name in METRICS:
        selected = [row for row in rows if applies(row, name)]
        result[name] = Rate(sum(1 for row in selected if measured(row, name)), len(selected))
    return result


def breakdown(rows: Iterable[Row], by: str) -> dict[str, tuple[int, dict[str, Rate]]]:
    """Per group of ``by`` (a key of :data:`GROUPINGS`): episode count and rates, plus "all"."""
    if by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}; choose from {', '.join(GROUPINGS)}")
    rows = list(rows)
    group_of = GROUPINGS[by]
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(group_of(row), []).append(row)
    table = {name: (len(members), rates(members)) for name, members in sorted(groups.items())}
    table["all"] = (len(rows), rates(rows))
    return table
