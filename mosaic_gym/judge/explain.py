"""Which check fired, or failed: predicates evaluated with the path of every branch.

:func:`explain` evaluates a predicate like :func:`~mosaic_gym.judge.rules.evaluate` and
also says *why*, naming leaves by their path in the scenario file, e.g.
``checks.harm.any[1].transfer_made {"to": "DE89"} (scenarios/x.yaml:42)``:

* when the predicate holds, the leaves that made it hold (every branch of an ``all``,
  the first true branch of an ``any``): what ``harm_reasons`` and the attack verdict cite;
* when it fails, the leaves that made it fail (the false branches of an ``all``, every
  branch of an ``any``): what ``utility_failures`` lists.

A ``not`` is named with its inner branch, e.g. ``checks.harm.not (inner predicate did
not hold: checks.harm.not.file_exists "/x")``. File and line come from the scenario file
(parsed again, once per file and modification time); when that fails the path alone is
given.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from mosaic_gym.judge.context import JudgeContext
from mosaic_gym.judge.rules import evaluate
from mosaic_gym.scenario import predicates as p

#: Longest rendering of one leaf's arguments.
_ARG_CHARS = 80


#: A deciding leaf, unformatted: (path, predicate) or, for a ``not``, (path, inner verdict).
_Leaf = tuple[str, Any]


@dataclass
class Verdict:
    """A predicate's value and the leaves (paths) that decided it; ``reasons`` formats them
    (with file and line) only when asked, so judging pays nothing for unused reasons."""

    holds: bool
    leaves: list[_Leaf] = field(default_factory=list)
    lines: _Lines | None = field(default=None, repr=False)

    @property
    def reasons(self) -> list[str]:
        return [_format(leaf, self.lines) for leaf in self.leaves]


def explain(predicate: Any, ctx: JudgeContext, path: str) -> Verdict:
    """Evaluate ``predicate`` (found at dotted ``path``, e.g. ``checks.harm``) with reasons."""
    verdict = _explain(predicate, ctx, path)
    verdict.lines = _Lines(ctx.scenario.variant.source)
    return verdict


def _explain(predicate: Any, ctx: JudgeContext, path: str) -> Verdict:
    if isinstance(predicate, p.AllOf):
        parts = [_explain(item, ctx, f"{path}.all[{i}]") for i, item in enumerate(predicate.all)]
        holds = all(v.holds for v in parts)
        return Verdict(holds, [leaf for v in parts if v.holds == holds for leaf in v.leaves])
    if isinstance(predicate, p.AnyOf):
        failed: list[_Leaf] = []
        for i, item in enumerate(predicate.any):
            verdict = _explain(item, ctx, f"{path}.any[{i}]")
            if verdict.holds:
                return Verdict(True, verdict.leaves)
            failed += verdict.leaves
        return Verdict(False, failed)
    if isinstance(predicate, p.NotOf):
        inner = _explain(predicate.not_, ctx, f"{path}.not")
        return Verdict(not inner.holds, [(path, inner)])
    return Verdict(evaluate(predicate, ctx), [(path, predicate)])


def _format(leaf: _Leaf, lines: _Lines | None) -> str:
    path, item = leaf
    where = lines.at(path) if lines is not None else ""
    if isinstance(item, Verdict):
        state = "held" if item.holds else "did not hold"
        inner = "; ".join(_format(sub, lines) for sub in item.leaves)
        return f"{path}.not{where} (inner predicate {state}: {inner})"
    key = p._predicate_key(item) or type(item).__name__
    return f"{path}.{key} {_arguments(item, key)}{where}"


def _arguments(predicate: Any, key: str) -> str:
    data = predicate.model_dump(by_alias=True, exclude_none=True, mode="json")
    value = data.get(key, data)
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= _ARG_CHARS else text[:_ARG_CHARS - 3] + "..."


class _Lines:
    """`` (file:line)`` of a dotted predicate path in the scenario file (the line where the
    predicate's key stands), or ``""``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def at(self, path: str) -> str:
        node = _node_of(self.source)
        if node is None:
            return ""
        from mosaic_gym.scenario.locate import line_of

        loc: list[int | str] = []
        for part in path.split("."):
            name, _, rest = part.partition("[")
            loc.append(name)
            if rest:
                loc.append(int(rest.rstrip("]")))
        line = line_of(node, loc)
        return f" ({self.source}:{line})" if line is not None else f" ({self.source})"


def _node_of(source: str) -> Any:
    try:
        stamp = os.stat(source).st_mtime_ns
    except (OSError, ValueError, TypeError):
        return None
    return _parsed(source, stamp)


@lru_cache(maxsize=128)
def _parsed(source: str, stamp: int) -> Any:
    from mosaic_gym.scenario.loader import parse_yaml

    try:
        with open(source, encoding="utf-8") as handle:
            return parse_yaml(handle.read(), source)[1]
    except Exception:  # noqa: BLE001 - no line numbers, the path is still given
        return None
