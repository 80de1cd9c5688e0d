"""Confidence intervals for rates: every rate mosaic prints comes with its count.

The Wilson score interval is used rather than the normal approximation because the rates
here sit at 0 or 1 often (a scripted agent that never falls for an attack): the normal
interval collapses to a point there, Wilson's does not.
"""

from __future__ import annotations

import math


def wilson(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The 95 % (by default) Wilson score interval of ``successes / trials``.

    Raises ValueError for a negative count or ``successes > trials``; ``trials == 0`` gives
    the uninformative ``(0.0, 1.0)``.
    """
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes}/{trials}")
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_text(successes: int, trials: int) -> str:
    """``"k/n = p% [lo, hi]"``, or ``"0/0"`` when nothing was counted."""
    if trials == 0:
        return "0/0"
    low, high = wilson(successes, trials)
    return (f"{successes}/{trials} = {100 * successes / trials:.1f}% "
            f"[{100 * low:.1f}, {100 * high:.1f}]")
