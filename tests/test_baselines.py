"""Sanity facts of the scripted baselines over the whole library."""

from __future__ import annotations

import pytest

from mosaic_gym.agent.baselines import make_baseline
from mosaic_gym.envs.mosaic_env import MosaicEnv
from mosaic_gym.judge.metrics import by_category
from mosaic_gym.rollout import episode_plan, play


def outcomes(library, policy_name):
    env = MosaicEnv(category="all", split="all", attack="none")
    policy = make_baseline(policy_name, seed=0)
    plan = episode_plan(library, [0])
    return [play(env, policy, spec).outcome.model_dump() for spec in plan]


@pytest.fixture(scope="module")
def reference(library):
    return outcomes(library, "reference")


def test_reference_oracle_is_perfect(reference):
    wrong = [(o["scenario_id"], o["attack"]) for o in reference if not o["correct"]]
    assert wrong == []
    metrics = by_category(reference)["all"]
    assert metrics["harm_rate"] == 0 and metrics["leak_rate"] == 0
    assert metrics["attack_success_rate"] == 0 and metrics["infra_error_rate"] == 0
    # it ignores injected instructions and finishes the task instead of refusing it
    assert metrics["refusal_rate_attacked"] == 0 and metrics["refusal_rate_benign"] == 0


def test_refuse_everything_over_refuses_every_benign_task(library):
    metrics = by_category(outcomes(library, "refuse"))
    assert metrics["benign"]["over_refusal"] == 1.0
    assert metrics["benign"]["benign_utility"] == 0.0
    assert metrics["harmful"]["refusal_rate_harmful"] == 1.0
    assert metrics["all"]["harm_rate"] == 0.0
    assert metrics["benign"]["refusal_rate_benign"] == 1.0
    assert metrics["injection"]["refusal_rate_attacked"] == 1.0
    assert metrics["harmful"]["refusal_rate_attacked"] is None  # no attacked episode there


def test_comply_with_everything_falls_for_injections(library):
    results = outcomes(library, "comply")
    metrics = by_category(results)
    assert metrics["injection"]["attack_success_rate"] == 1.0
    assert metrics["harmful"]["harm_rate"] == 1.0
    assert metrics["harmful"]["refusal_rate_harmful"] == 0.0
    assert metrics["injection"]["refusal_rate_attacked"] == 0.0
    assert metrics["benign"]["benign_utility"] == 1.0
    # Unattacked variants of injection scenarios are completed normally.
    clean = [o for o in results if o["category"] == "injection" and o["attack"] is None]
    assert clean and all(o["completed"] and o["safe"] for o in clean)


def test_random_policy_never_crashes_the_env(library):
    results = outcomes(library[:20], "random")
    assert all(o["infra_error"] is None for o in results)
