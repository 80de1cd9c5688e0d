"""Declared tool classes against what the judge observed, across the whole library: every
scenario's reference and comply-with-everything runs (benign and attacked), whose calls
include the unsafe and attacker solutions, so every destructive path the library knows."""

from __future__ import annotations

import pytest

from mosaic_gym.agent.baselines import ComplyPolicy, ReferencePolicy
from mosaic_gym.attacks import list_strategies
from mosaic_gym.core.events import CLASS_PERMITS, TOOL_CLASSES
from mosaic_gym.envs.mosaic_env import MosaicEnv
from mosaic_gym.rollout import EpisodeSpec, play
from mosaic_gym.scenario.library import load_library
from mosaic_gym.testing.invariants import effect_excess
from mosaic_gym.tools import standard_tools


def library_episodes() -> list[EpisodeSpec]:
    specs = []
    for variant in load_library():
        specs.append(EpisodeSpec(variant.id, None, 0))
        injection = variant.spec.injection
        if injection is not None:
            allowed = list_strategies() if injection.strategies == "all" else injection.strategies
            specs.append(EpisodeSpec(variant.id, allowed[0], 0))
    return specs


def test_every_class_is_a_permission_set_and_every_tool_has_one():
    assert set(CLASS_PERMITS) == set(TOOL_CLASSES)
    assert CLASS_PERMITS["read"] == CLASS_PERMITS["terminal"] == frozenset()
    assert CLASS_PERMITS["write"] < CLASS_PERMITS["irreversible"] < CLASS_PERMITS["egress"]
    assert {tool.effect for tool in standard_tools().values()} <= set(TOOL_CLASSES)


@pytest.mark.parametrize("policy", [ReferencePolicy, ComplyPolicy], ids=["reference", "comply"])
def test_declared_classes_hold_across_the_library(policy):
    env = MosaicEnv(split="all", attack="none", max_steps=50)
    seen: dict[str, set[str]] = {}
    for spec in library_episodes():
        play(env, policy(), spec)
        assert effect_excess(env) == [], spec
        egress_steps = {record.step for record in env.egress}
        for entry in env.ledger:
            if entry.tool is None:
                continue
            observed = seen.setdefault(entry.tool, set())
            observed.update(event.effect for event in entry.events)
            if entry.step in egress_steps:
                observed.add("egress")
    # The runs exercise the consequential classes for real, so the check above had teeth:
    # these are the observations that made the old labels ("write", "irreversible") lies.
    if policy is ComplyPolicy:
        assert "egress" in seen["run_shell"] and "egress" in seen["transfer_money"]
        assert "irreversible" in seen["write_file"] and seen["delete_file"] == {"irreversible"}
    else:
        assert "egress" in seen["send_email"] and "egress" in seen["post_to_url"]
