"""``mosaic compare RUN_A RUN_B [...]``: how far apart two runs are, and how sure we are.

The first run is the baseline; every further run is compared with it, metric by metric:

* each run's rate over all its episodes, with its count and Wilson interval;
* the delta (run minus baseline) over all episodes, with Newcombe's interval for two
  independent rates: right when the runs played different episodes;
* the delta on the episodes both runs played (same scenario, attack and seed), paired: a
  percentile bootstrap interval over the shared episodes and McNemar's exact p-value. When
  the runs share their plan, as two policies evaluated with the same flags do, this is the
  sharper and the honest test, because the variation between scenarios cancels out.

The table is printed with rich and, when matplotlib is installed (the ``report`` or
``train`` extra), drawn as a forest plot of the paired deltas in a PNG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mosaic_gym.report.breakdown import applies, measured, rates
from mosaic_gym.report.runs import Run, load_run
from mosaic_gym.report.stats import PairedComparison, Rate, newcombe_difference, paired
from mosaic_gym.report.viewer import TABLE_METRICS


@dataclass(frozen=True)
class MetricComparison:
    metric: str
    baseline: Rate
    other: Rate
    delta: float | None
    interval: tuple[float, float] | None  # Newcombe, independent samples
    shared: PairedComparison

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "baseline": self.baseline.as_dict(),
                "other": self.other.as_dict(), "delta": self.delta,
                "interval": list(self.interval) if self.interval else None,
                "paired": {"n": self.shared.n, "baseline_only": self.shared.a_only,
                           "other_only": self.shared.b_only, "delta": self.shared.delta,
                           "interval": list(self.shared.interval) if self.shared.interval
                           else None, "p_value": self.shared.p_value}}


def compare_runs(baseline: Run, other: Run, metrics: Sequence[str] = TABLE_METRICS,
                 seed: int = 0) -> list[MetricComparison]:
    """Every metric of ``other`` against ``baseline``."""
    base_rates, other_rates = rates(baseline.outcomes), rates(other.outcomes)
    base_keys, other_keys = baseline.by_key(), other.by_key()
    shared_keys = sorted(set(base_keys) & set(other_keys))
    result = []
    for metric in metrics:
        a, b = base_rates[metric], other_rates[metric]
        delta = interval = None
        if a.n and b.n:
            delta = b.k / b.n - a.k / a.n
            interval = newcombe_difference(a, b)
        pairs = []
        for key in shared_keys:
            row_a, row_b = base_keys[key]["outcome"], other_keys[key]["outcome"]
            # The same episode: a metric applies to both or (if the scenario file changed
            # between runs) to neither, and such an episode is left out.
            if applies(row_a, metric) and applies(row_b, metric):
                pairs.append((measured(row_a, metric), measured(row_b, metric)))
        result.append(MetricComparison(metric, a, b, delta, interval, paired(pairs, seed=seed)))
    return result


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:+.1f}"


def comparison_table(baseline: Run, other: Run, rows: Sequence[MetricComparison]) -> Any:
    from rich.table import Table

    table = Table(title=f"{other.name} ({other.path}) vs {baseline.name} ({baseline.path})")
    for column in ("metric", f"{baseline.name}", f"{other.name}", "delta [95% CI]",
                   "shared n", "paired delta [95% CI]", "McNemar p"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for row in rows:
        ci = (f"[{_pct(row.interval[0])}, {_pct(row.interval[1])}]" if row.interval else "")
        shared = row.shared
        paired_ci = (f"[{_pct(shared.interval[0])}, {_pct(shared.interval[1])}]"
                     if shared.interval else "")
        table.add_row(row.metric, row.baseline.format(), row.other.format(),
                      f"{_pct(row.delta)} {ci}".strip(), str(shared.n),
                      f"{_pct(shared.delta)} {paired_ci}".strip(),
                      f"{shared.p_value:.3g}" if shared.n else "—")
    return table


def plot(comparisons: Sequence[tuple[Run, list[MetricComparison]]], baseline: Run,
         path: Path) -> Path:
    """Forest plot of the paired deltas (points) and their intervals; one colour per run."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt

    metrics = [row.metric for row in comparisons[0][1]]
    figure, axes = plt.subplots(figsize=(8, 0.45 * len(metrics) * max(1, len(comparisons)) + 1.5))
    height = 0.8 / max(1, len(comparisons))
    for offset, (run, rows) in enumerate(comparisons):
        ys, xs, lows, highs = [], [], [], []
        for position, row in enumerate(rows):
            if row.shared.delta is None or row.shared.interval is None:
                continue
            ys.append(len(metrics) - 1 - position + offset * height - 0.4 + height / 2)
            xs.append(100 * row.shared.delta)
            lows.append(100 * (row.shared.delta - row.shared.interval[0]))
            highs.append(100 * (row.shared.interval[1] - row.shared.delta))
        axes.errorbar(xs, ys, xerr=[lows, highs], fmt="o", capsize=3, label=run.name)
    axes.axvline(0, color="grey", linewidth=1)
    axes.set_yticks(range(len(metrics)), list(reversed(metrics)))
    axes.set_xlabel(f"paired delta vs {baseline.name} (percentage points, 95 % bootstrap CI)")
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def compare_files(files: Mapping[str, Path], baseline: str, *, seed: int = 0,
                  quiet: bool = False) -> dict[str, Any]:
    """Compare trajectory files (name -> JSONL) with the one named ``baseline``, paired.

    This is what the replication uses (its evaluations are JSONL files of one plan, so every
    episode is shared): one table per method against the baseline, and the JSON form.
    """
    from rich.console import Console

    from mosaic_gym.report.runs import read_records

    runs = {name: Run(path=Path(path), metrics={"policy": name},
                      records=read_records(Path(path))) for name, path in files.items()}
    if baseline not in runs:
        raise ValueError(f"no trajectories for the baseline {baseline!r}")
    console = Console(quiet=quiet, width=200)
    result = {}
    for name, run in runs.items():
        if name == baseline:
            continue
        rows = compare_runs(runs[baseline], run, seed=seed)
        console.print(comparison_table(runs[baseline], run, rows))
        result[name] = [row.as_dict() for row in rows]
    return {"baseline": baseline, "methods": result}


def compare(paths: Sequence[Path | str], png: Path | None = None, seed: int = 0,
            quiet: bool = False) -> dict[str, Any]:
    """Load the runs, print one table per run against the first, save the PNG.

    Returns ``{"baseline": path, "runs": {path: [metric comparisons as dicts]}, "png": path}``.
    Raises :class:`~mosaic_gym.errors.RunError` for a bad folder and ``ValueError`` for
    fewer than two runs.
    """
    from rich.console import Console

    if len(paths) < 2:
        raise ValueError("compare needs at least two run folders")
    runs = [load_run(path) for path in paths]
    baseline = runs[0]
    console = Console(quiet=quiet, width=200)
    comparisons = []
    for run in runs[1:]:
        rows = compare_runs(baseline, run, seed=seed)
        comparisons.append((run, rows))
        console.print(comparison_table(baseline, run, rows))
    written = None
    if png is not None:
        written = plot(comparisons, baseline, png)
        console.print(f"wrote {written}")
    return {"baseline": str(baseline.path), "png": str(written) if written else None,
            "runs": {str(run.path): [row.as_dict() for row in rows] for run, rows in comparisons}}
