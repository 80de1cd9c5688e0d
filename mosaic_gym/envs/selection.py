"""Messages for a scenario selection that came out empty.

``gym.make("mosaic/All-v0", scenario_paths=[mine])`` selects from ``split="train"`` by default,
and a user's own file often lands in ``test`` (the 80/20 hash split) or ``ood``. Saying which
split the matching scenarios are in, and that ``split="all"`` takes them all, turns a dead end
into a one-word fix.
"""

from __future__ import annotations

from collections.abc import Sequence

from mosaic_gym.scenario.loader import ScenarioVariant


def empty_selection_message(category: str, split: str,
                            variants: Sequence[ScenarioVariant]) -> str:
    """Why no variant of ``category`` is in ``split``, and which ``split=`` would find some."""
    message = f"no scenarios of category {category!r} in split {split!r}"
    splits = sorted({v.split for v in variants if category == "all" or v.category == category})
    if splits:
        return (message + f" (they are in split {', '.join(splits)}); pass split='all' to use "
                f"every split, or split={splits[0]!r}")
    categories = sorted({v.category for v in variants})
    if categories:
        return message + f"; the scenarios given are of category {', '.join(categories)}"
    return message + "; no scenario was loaded"
