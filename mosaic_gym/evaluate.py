"""``mosaic eval``: play a policy over an environment's scenarios and report metrics."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mosaic_gym.judge.metrics import METRICS, by_category

#: Metrics shown in the table, in order, with short labels.
TABLE_ROWS = [
    ("harm_rate", "harm rate"),
    ("refusal_rate_harmful", "refusal rate on harmful"),
    ("attack_success_rate", "attack success rate"),
    ("benign_utility", "benign utility"),
    ("utility_under_attack", "utility under attack"),
    ("over_refusal", "over-refusal"),
    ("refusal_rate_attacked", "refusal under injection"),
    ("leak_rate", "leak rate"),
    ("irreversible_rate", "irreversible-action rate"),
    ("correct_rate", "correct (expected and safe)"),
    ("infra_error_rate", "infra errors"),
]


def make_policy(name: str, seed: int = 0) -> Any:
    """A built-in baseline by name, or a policy recipe file (YAML)."""
    if name.endswith((".yaml", ".yml")):
        from mosaic_gym.agent.recipes import load_policy  # train extra

        return load_policy(name)
    from mosaic_gym.agent.baselines import make_baseline

    return make_baseline(name, seed=seed)


def make_env(env_id: str, **kwargs: Any) -> Any:
    import gymnasium as gym

    import mosaic_gym  # noqa: F401  (registers the ids)

    return gym.make(env_id, **{k: v for k, v in kwargs.items() if v is not None})


def format_table(metrics: Mapping[str, Mapping[str, float | None]], title: str) -> Any:
    from rich.table import Table

    columns = list(metrics)
    table = Table(title=title)
    table.add_column("metric")
    for column in columns:
        table.add_column(f"{column} (n={int(metrics[column]['episodes'] or 0)})", justify="right")
    for key, label in TABLE_ROWS:
        cells = []
        for column in columns:
            value = metrics[column].get(key)
            cells.append("—" if value is None else f"{100 * value:5.1f}%")
        table.add_row(label, *cells)
    return table


def evaluate_policy(*, policy: str, env_id: str, split: str = "all", attack: str = "all",
                    seeds: Iterable[int] = (0,), backend: str = "fake",
                    scenario: str | None = None, out: Path = Path("runs/eval"),
                    limit: int | None = None, quiet: bool = False,
                    trust_code: bool = False) -> dict[str, Any]:
    """Evaluate ``policy`` and write ``metrics.json`` and ``trajectories.jsonl`` under ``out``.

    Returns the metrics document. Trajectories are appended and flushed one by
    one, so an interrupted run keeps every finished episode.
    """
    from rich.console import Console
    from rich.progress import track

    from mosaic_gym.runner import episode_plan, play

    env = make_env(env_id, split=split if scenario is None else None, backend=backend,
                   scenario=scenario, attack="none", trust_code=trust_code)
    base = env.unwrapped
    plan = episode_plan(base.pool, seeds, attack=attack)[:limit]
    agent = make_policy(policy)
    out.mkdir(parents=True, exist_ok=True)
    outcomes = []
    # Wide enough for six columns even when stdout is not a terminal (CI logs, pipes).
    console = Console(quiet=quiet, width=None if sys.stdout.isatty() else 120)
    try:
        with (out / "trajectories.jsonl").open("w", encoding="utf-8") as sink:
            for spec in track(plan, description=f"{policy} on {env_id}", console=console,
                              disable=quiet):
                record = play(base, agent, spec)
                record["policy"] = policy
                sink.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
                sink.flush()
                outcomes.append(record["outcome"])
    finally:
        env.close()
    metrics = by_category(outcomes)
    document = {
        "policy": policy, "env": env_id, "split": split, "attack": attack, "backend": backend,
        "seeds": list(seeds), "episodes": len(outcomes), "metrics": metrics,
        "definitions": {name: text for name, (text, _, _) in METRICS.items()},
    }
    (out / "metrics.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    console.print(format_table(metrics, f"{policy} on {env_id} (split={split}, "
                                        f"attack={attack})"))
    console.print(f"wrote {out / 'metrics.json'} and {out / 'trajectories.jsonl'}")
    return document
