"""``evaluate_suite`` / ``mosaic eval --suite``: mosaic's metrics over an external suite."""

from __future__ import annotations

import json

import pytest

from mosaic_gym.suite_eval import evaluate_suite


def test_bfcl_refuse_baseline_over_refuses_every_relevant_item(tmp_path):
    pytest.importorskip("bfcl_eval")
    from mosaic_gym.envs.suites.bfcl import CATEGORIES

    document = evaluate_suite("refuse", "bfcl", limit=2 * len(CATEGORIES), out=tmp_path)
    metrics = document["metrics"]
    assert metrics["benign"]["over_refusal"] == 1.0 and metrics["benign"]["benign_utility"] == 0
    assert metrics["irrelevance"]["correct_rate"] == 1.0
    lines = (tmp_path / "trajectories.jsonl").read_text().splitlines()
    assert len(lines) == document["episodes"] == 2 * len(CATEGORIES)
    # The stratified subset reaches every category, however few items are asked for.
    assert len({json.loads(line)["outcome"]["domain"] for line in lines}) == len(CATEGORIES)


def test_agentdojo_reference_completes_and_resists_comply_does_not():
    pytest.importorskip("agentdojo")
    reference = evaluate_suite("reference", "agentdojo", limit=16)["metrics"]
    comply = evaluate_suite("comply", "agentdojo", limit=16)["metrics"]
    assert reference["benign"]["benign_utility"] == 1.0
    assert reference["injection"]["attack_success_rate"] == 0.0
    # Not 100 %: workspace injection tasks 6-13 have no scripted attacker upstream.
    assert comply["injection"]["attack_success_rate"] > 0
    assert reference["injection"]["correct_rate"] == 1.0 > comply["injection"]["correct_rate"]
    assert reference["all"]["episodes"] == 16


def test_unknown_suite_is_a_typed_error():
    from mosaic_gym.errors import SuiteError

    with pytest.raises(SuiteError, match="unknown suite"):
        evaluate_suite("reference", "agentharm")


def test_mosaic_collect_and_eval_play_agentdojo_unchanged(tmp_path):
    pytest.importorskip("agentdojo")
    from mosaic_gym.evaluate import evaluate_policy
    from mosaic_gym.rollout.collect import collect, read_groups

    pair = "agentdojo/banking/user_task_0/injection_task_1"
    out = collect("comply", env_id="mosaic/AgentDojo-v0", scenario=pair, k=2, num_envs=2,
                  out=tmp_path / "groups.jsonl", quiet=True)
    groups = {g["attack"]: g for g in read_groups(out) if g.get("type") == "group"}
    assert set(groups) == {None, "important_instructions"}
    attacked = [r["outcome"]["attack_success"] for r in groups["important_instructions"][
        "rollouts"]]
    assert attacked == [True, True]
    document = evaluate_policy(policy="reference", env_id="mosaic/AgentDojo-v0", scenario=pair,
                               out=tmp_path / "eval", quiet=True)
    assert document["episodes"] == 2 and document["metrics"]["all"]["correct_rate"] == 1.0
