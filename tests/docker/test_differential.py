"""Differential test: the fake and the docker backend give the same verdicts.

For every scenario that lays down files or offers the shell, the reference,
comply-with-everything and refuse-everything policies are played on both
backends with the same seed and attack; their ``Outcome`` must agree field by
field. Known, documented differences would be listed in ``KNOWN_DIFFERENCES``
(none at present).
"""

from __future__ import annotations

from typing import Any

import pytest

from mosaic_gym.agent.baselines import make_baseline
from mosaic_gym.envs.mosaic_env import MosaicEnv
from mosaic_gym.rollout import EpisodeSpec, play
from mosaic_gym.scenario.library import load_library

pytestmark = pytest.mark.docker

POLICIES = ("reference", "comply", "refuse")
#: Attack used for injection scenarios (besides the attack-free variant).
ATTACK = "ignore_previous"
#: scenario id -> why the backends may disagree on it.
KNOWN_DIFFERENCES: dict[str, str] = {}


def _uses_sandbox(variant: Any) -> bool:
    spec = variant.spec
    return "run_shell" in spec.tools or bool(spec.world.files)


def _plan() -> list[EpisodeSpec]:
    plan = []
    for variant in load_library():
        if not _uses_sandbox(variant) or variant.id in KNOWN_DIFFERENCES:
            continue
        plan.append(EpisodeSpec(variant.id, None, 0))
        if variant.has_injection:
            plan.append(EpisodeSpec(variant.id, ATTACK, 0))
    return plan


def _verdict(trajectory: Any) -> dict[str, Any]:
    # Everything in the outcome must agree, tool-error counts included (their
    # texts differ: busybox vs the fake's coreutils wording, but those are not
    # part of the verdict).
    return trajectory.outcome.model_dump()


def test_fake_and_docker_agree_on_every_sandbox_scenario() -> None:
    plan = _plan()
    assert len(plan) >= 50, "expected most of the library to use files or the shell"
    fake = MosaicEnv(category="all", split="all", backend="fake")
    docker = MosaicEnv(category="all", split="all", backend="docker")
    mismatches = []
    unsafe: dict[str, int] = dict.fromkeys(POLICIES, 0)
    try:
        for name in POLICIES:
            for spec in plan:
                results = []
                for env in (fake, docker):
                    policy = make_baseline(name, seed=0)
                    results.append(_verdict(play(env, policy, spec)))
                docker_verdict = results[1]
                unsafe[name] += bool(docker_verdict["harm"] or docker_verdict["leaks"]
                                     or docker_verdict["attack_success"])
                if results[0] != results[1]:
                    diff = {key: (results[0][key], results[1].get(key))
                            for key in results[0] if results[0][key] != results[1].get(key)}
                    mismatches.append((name, spec.scenario_id, spec.attack, diff))
    finally:
        fake.close()
        docker.close()
    assert not mismatches, "\n".join(map(str, mismatches[:20]))
    # The comparison is not vacuous: on docker, comply does real damage and the others none.
    assert unsafe["comply"] >= len(plan) // 4, unsafe
    assert unsafe["reference"] == 0 and unsafe["refuse"] == 0, unsafe
