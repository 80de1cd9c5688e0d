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
                    limit: int | None = None, quiet: bool = False, fresh: bool = False,
                    num_envs: int = 1, trust_code: bool = False) -> dict[str, Any]:
    """Evaluate ``policy`` and write ``trajectories.jsonl`` and ``metrics.json`` under ``out``.

    The episodes are :func:`~mosaic_gym.rollout.plan.episode_plan` of the environment's pool,
    or, with ``limit``, a subset drawn round-robin over the categories
    (:func:`~mosaic_gym.rollout.plan.episode_subset`). Trajectories are appended, flushed and
    fsync'd one by one under an exclusive lock, and ``metrics.json`` is rewritten as they come
    in, so an interrupted run keeps every finished episode; running the same command again
    resumes it (``fresh=True`` starts over). Returns the metrics document.

    Raises :class:`~mosaic_gym.errors.RunFileError` when ``out`` holds another run or is being
    written, ``ValueError`` for bad arguments (before any episode is played).
    """
    from rich.console import Console
    from rich.progress import track

    from mosaic_gym.agent.policy import check_policy, policy_name
    from mosaic_gym.envs.registration import make_env
    from mosaic_gym.rollout.driver import play_plan
    from mosaic_gym.rollout.plan import episode_plan, episode_subset
    from mosaic_gym.rollout.store import JsonlStore, read_rows

    seed_list = [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("no seeds to evaluate")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    check_policy(policy)
    env_kwargs = {"split": split if scenario is None else None, "backend": backend,
                  "scenario": scenario, "attack": "none", "trust_code": trust_code or None}
    probe = make_env(env_id, **env_kwargs)
    try:
        plan = episode_subset(episode_plan(probe.unwrapped.pool, seed_list, attack=attack),
                              limit)
    finally:
        probe.close()
    settings = {"format": "mosaic-eval/2", "policy": policy_name(policy), "env": env_id,
                "split": split, "attack": attack, "backend": backend, "scenario": scenario,
                "seeds": seed_list, "limit": limit, "created": _now()}
    out.mkdir(parents=True, exist_ok=True)
    path = out / "trajectories.jsonl"
    # Wide enough for six columns even when stdout is not a terminal (CI logs, pipes).
    console = Console(quiet=quiet, width=None if sys.stdout.isatty() else 120)
    title = f"{settings['policy']} on {env_id} (split={split}, attack={attack})"
    with JsonlStore(path, settings, key=_episode_key, fresh=fresh,
                    must_match=("policy", "env", "split", "attack", "backend",
                                "scenario")) as store:
        todo = [spec for spec in plan if spec.key not in store.done]
        if len(todo) < len(plan):
            console.print(f"resuming {path}: {len(plan) - len(todo)} of {len(plan)} "
                          "episodes already there")
        envs = [make_env(env_id, **env_kwargs) for _ in range(max(1, min(num_envs,
                                                                         len(todo) or 1)))]
        wanted = {spec.key for spec in plan}
        try:
            stream = play_plan(envs, policy, todo)
            for count, (_job, record) in enumerate(
                    track(stream, total=len(todo), description=title, console=console,
                          disable=quiet), start=1):
                store.write(record.model_dump(mode="json"))
                if count % 25 == 0:
                    _write_metrics(out, settings, path, wanted)
        finally:
            for env in envs:
                env.close()
        document = _write_metrics(out, settings, path, wanted)
    rows = [r for r in read_rows(path) if _episode_key(r) in wanted]
    console.print(format_table(document["metrics"], title))
    console.print(f"wrote {out / 'metrics.json'} and {path} ({len(rows)} episodes)")
    return document


def _episode_key(row: Mapping[str, Any]) -> str:
    """``scenario|attack|reset seed`` of a trajectory row (format 2; format 1 by its seed)."""
    seed = row.get("reset_seed", row.get("seed"))
    return f"{row.get('scenario_id')}|{row.get('attack') or 'none'}|{seed}"


def _write_metrics(out: Path, settings: Mapping[str, Any], path: Path,
                   wanted: set[str]) -> dict[str, Any]:
    """Recompute ``metrics.json`` from the rows of this plan in the file (atomic replace)."""
    import os

    from mosaic_gym.rollout.store import read_rows

    outcomes = [row["outcome"] for row in read_rows(path)
                if _episode_key(row) in wanted and row.get("outcome")]
    metrics = by_category(outcomes)
    document = {**{k: settings[k] for k in ("policy", "env", "split", "attack", "backend",
                                           "seeds", "limit")},
                "episodes": len(outcomes), "planned": len(wanted), "metrics": metrics,
                "definitions": {name: text for name, (text, _, _) in METRICS.items()}}
    tmp = out / "metrics.json.tmp"
    tmp.write_text(json.dumps(document, indent=2), encoding="utf-8")
    os.replace(tmp, out / "metrics.json")
    return document


def _now() -> str:
    from mosaic_gym.rollout.store import now

    return now()
