"""``mosaic eval --suite agentdojo|bfcl``: a policy over an external suite, mosaic's tables.

The plan is the whole suite: for AgentDojo every user task alone (benign) and every
(user task x injection task) pair under one attack; for BFCL every item of the supported
categories. ``limit`` draws a seeded subset round-robin over strata (AgentDojo: benign and
injection; BFCL: its categories), so a small evaluation still sees every kind of episode
(:mod:`mosaic_gym.rollout.suites`, shared with the replication). Episodes are played by
``rollout.play``, the metrics are ``judge.metrics`` (plus an ``irrelevance`` column for
BFCL's declined items), and the table is ``evaluate.format_table``: the same numbers and
layout as ``mosaic eval`` on mosaic's own scenarios.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mosaic_gym.judge.metrics import METRICS, by_category, compute
from mosaic_gym.rollout.suites import SUITE_ENVS, suite_env, suite_plan

__all__ = ["SUITE_ENVS", "evaluate_suite", "suite_env", "suite_metrics", "suite_plan"]


def suite_metrics(outcomes: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float | None]]:
    table = by_category(outcomes)
    declined = [o for o in outcomes if o["category"] == "irrelevance"]
    if declined:
        table = {"irrelevance": compute(declined), **table}
    return table


def evaluate_suite(policy: Any, suite: str, limit: int | None = None, *,
                   out: Path | None = None, attack: str | None = None, seed: int = 0,
                   quiet: bool = True) -> dict[str, Any]:
    """Play ``policy`` (a name, a recipe path or a Policy) over ``suite``; the metrics document.

    Writes ``metrics.json`` and ``trajectories.jsonl`` under ``out`` when given (each
    trajectory flushed as it ends). Raises SuiteError when the suite is not installed.
    """
    from rich.console import Console

    from mosaic_gym.agent.policy import make_policy
    from mosaic_gym.evaluate import format_table
    from mosaic_gym.rollout import play

    agent = make_policy(policy) if isinstance(policy, str) else policy
    name = policy if isinstance(policy, str) else str(getattr(policy, "name", "policy"))
    env = suite_env(suite, attack=attack)
    plan = suite_plan(env, suite, limit, seed)
    outcomes = []
    sink = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        sink = (out / "trajectories.jsonl").open("w", encoding="utf-8")
    try:
        for spec in plan:
            record = play(env, agent, spec).model_copy(update={"policy": name})
            if sink is not None:
                sink.write(record.to_json() + "\n")
                sink.flush()
            assert record.outcome is not None
            outcomes.append(record.outcome.model_dump())
    finally:
        if sink is not None:
            sink.close()
        env.close()
    metrics = suite_metrics(outcomes)
    document = {"policy": name, "env": SUITE_ENVS[suite], "suite": suite,
                "attack": attack, "limit": limit, "episodes": len(outcomes),
                "metrics": metrics,
                "definitions": {key: text for key, (text, _, _) in METRICS.items()}}
    if out is not None:
        (out / "metrics.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    console = Console(quiet=quiet, width=None if sys.stdout.isatty() else 120)
    console.print(format_table(metrics, f"{name} on {suite} ({len(outcomes)} episodes)"))
    return document
