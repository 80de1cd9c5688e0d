"""Rates with honest uncertainty: Wilson intervals, differences, and a paired test.

Every rate this package prints is a count over a count (``k`` of ``n``), so the interval is
computed from the counts, never from the rounded figure:

* one rate: the Wilson score interval. Unlike the normal ("Wald") interval it stays inside
  [0, 1] and does not collapse to a zero width at 0 % or 100 %, which matter here: a good
  policy has 0 leaks in 40 episodes, and "0 % (0.0 to 8.8 %)" is the honest statement;
* the difference of two independent rates (two runs over different episodes): Newcombe's
  hybrid score interval (his method 10), built from the two Wilson intervals, well behaved at
  the boundaries where the Wald difference is not;
* the difference on *shared* episodes (the same scenario, attack and seed in both runs):
  paired. The test is McNemar's exact test (a two-sided binomial test on the discordant
  pairs: only episodes where the runs disagree carry information), and the interval a seeded
  percentile bootstrap over the shared episodes, so it is reproducible run to run.

Only the standard library is used: these few formulas do not justify a SciPy dependency in
the core gym, and the tests check them against known values.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

#: z for a two-sided 95 % interval.
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Rate:
    """``k`` successes of ``n`` trials with a 95 % Wilson interval (``None`` when n = 0)."""

    k: int
    n: int

    def __post_init__(self) -> None:
        if self.n < 0 or self.k < 0 or self.k > self.n:
            raise ValueError(f"invalid count {self.k}/{self.n}")

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.k, self.n) if self.n else None

    def as_dict(self) -> dict[str, float | int | None]:
        low, high = self.interval or (None, None)
        return {"k": self.k, "n": self.n, "rate": self.value, "low": low, "high": high}

    def format(self) -> str:
        """``12.5% [4.1, 29.1] (4/32)``, or ``—`` when nothing applies."""
        if not self.n:
            return "—"
        low, high = wilson(self.k, self.n)
        return (f"{100 * self.k / self.n:.1f}% [{100 * low:.1f}, {100 * high:.1f}] "
                f"({self.k}/{self.n})")


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of ``k`` successes in ``n`` trials (``n`` > 0)."""
    if n <= 0:
        raise ValueError("the Wilson interval needs at least one trial")
    if not 0 <= k <= n:
        raise ValueError(f"invalid count {k}/{n}")
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # Exact at the boundaries (rounding would otherwise leave 1e-17 below 0).
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def newcombe_difference(a: Rate, b: Rate, z: float = Z95) -> tuple[float, float]:
    """95 % interval of ``b.value - a.value`` for independent samples (Newcombe's method 10)."""
    if not a.n or not b.n:
        raise ValueError("both rates need at least one trial")
    pa, pb = a.k / a.n, b.k / b.n
    la, ua = wilson(a.k, a.n, z)
    lb, ub = wilson(b.k, b.n, z)
    delta = pb - pa
    low = delta - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2)
    high = delta + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2)
    return max(-1.0, low), min(1.0, high)


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` fair coin flips."""
    if n == 0:
        return 1.0
    tail = min(k, n - k)
    mass = sum(math.comb(n, i) for i in range(tail + 1)) / 2 ** n
    return min(1.0, 2 * mass)


@dataclass(frozen=True)
class PairedComparison:
    """One metric on the episodes two runs share (each pair: did it hold in A, in B)."""

    n: int
    a_only: int  # held in A, not in B
    b_only: int  # held in B, not in A
    both: int
    delta: float | None  # rate in B minus rate in A, over the shared episodes
    interval: tuple[float, float] | None
    p_value: float  # McNemar's exact test; 1.0 when the runs never disagree


def paired(pairs: Sequence[tuple[bool, bool]], *, resamples: int = 2000,
           seed: int = 0) -> PairedComparison:
    """Compare two runs on shared episodes: McNemar's exact test and a bootstrap interval.

    ``pairs`` holds, per shared episode, whether the metric held in run A and in run B. The
    bootstrap resamples episodes (not the two runs separately), keeping the pairing.
    """
    n = len(pairs)
    a_only = sum(1 for a, b in pairs if a and not b)
    b_only = sum(1 for a, b in pairs if b and not a)
    both = sum(1 for a, b in pairs if a and b)
    if n == 0:
        return PairedComparison(0, 0, 0, 0, None, None, 1.0)
    # Per-episode difference in {-1, 0, 1}; the paired delta is its mean.
    diffs = [int(b) - int(a) for a, b in pairs]
    delta = sum(diffs) / n
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(diffs, k=n)) / n for _ in range(resamples))
    low = means[int(0.025 * (resamples - 1))]
    high = means[int(math.ceil(0.975 * (resamples - 1)))]
    p_value = binomial_two_sided(b_only, a_only + b_only)
    return PairedComparison(n, a_only, b_only, both, delta, (low, high), p_value)


@dataclass(frozen=True)
class Estimate:
    """A metric over episodes with its 95 % percentile-bootstrap interval."""

    value: float | None
    low: float | None
    high: float | None
    n: int
    """Episodes the metric applies to (those with a non-zero denominator)."""

    def as_dict(self) -> dict[str, float | int | None]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def bootstrap_ratios(rows: Sequence[dict[str, tuple[float, float]]], *,
                     differences: dict[str, tuple[str, str]] | None = None,
                     resamples: int = 1000, seed: int = 0,
                     level: float = 0.95) -> dict[str, Estimate]:
    """Ratio metrics over episodes with percentile-bootstrap intervals over episodes.

    ``rows`` holds one mapping per episode, ``metric -> (numerator, denominator)``; a metric
    is ``sum(numerators) / sum(denominators)`` over the episodes (a rate: ``(held, applies)``
    per episode; a token share: ``(safety tokens, assistant tokens)``). Each resample draws
    the episodes with replacement (seeded) and recomputes every metric on the *same* draw,
    so ``differences`` (``name -> (metric a, metric b)``, the value being ``a - b``, e.g.
    refusal on harmful minus refusal on benign) get intervals that respect the correlation.
    A difference may name an earlier one (in the mapping's order): a difference of
    differences, e.g. how much a refusal gap changed between two runs whose per-episode
    terms sit side by side in one row.
    A metric whose denominator is zero in the sample is ``None``; resamples where it is zero
    are left out of its interval.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0 < level < 1:
        raise ValueError(f"level must be within (0, 1), got {level}")
    differences = dict(differences or {})
    names = sorted({name for row in rows for name in row})
    known = set(names)
    for name, (a, b) in differences.items():
        if a not in known or b not in known:
            raise ValueError(f"difference {name!r} needs metrics {a!r} and {b!r}")
        known.add(name)
    n = len(rows)
    nums = {m: [float(row.get(m, (0.0, 0.0))[0]) for row in rows] for m in names}
    dens = {m: [float(row.get(m, (0.0, 0.0))[1]) for row in rows] for m in names}

    def ratio(m: str, index: Sequence[int]) -> float | None:
        den = sum(dens[m][i] for i in index)
        return sum(nums[m][i] for i in index) / den if den else None

    full = range(n)
    point = {m: ratio(m, full) for m in names}
    for name, (a, b) in differences.items():
        va, vb = point[a], point[b]
        point[name] = va - vb if va is not None and vb is not None else None
    draws: dict[str, list[float]] = {m: [] for m in point}
    rng = random.Random(seed)
    for _ in range(resamples if n else 0):
        index = rng.choices(range(n), k=n)
        values = {m: ratio(m, index) for m in names}
        for name, (a, b) in differences.items():
            va, vb = values[a], values[b]
            values[name] = va - vb if va is not None and vb is not None else None
        for m, value in values.items():
            if value is not None:
                draws[m].append(value)
    tail = (1 - level) / 2

    def counts(m: str) -> int:
        if m in dens:
            return sum(1 for d in dens[m] if d)
        return min(counts(part) for part in differences[m])

    result: dict[str, Estimate] = {}
    for m, value in point.items():
        counted = counts(m)
        samples = sorted(draws[m])
        if value is None or not samples:
            result[m] = Estimate(value, None, None, counted)
            continue
        last = len(samples) - 1
        result[m] = Estimate(value, samples[int(tail * last)],
                             samples[int(math.ceil((1 - tail) * last))], counted)
    return result
