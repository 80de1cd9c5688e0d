"""Safety invariants of the environment over the whole library, written on the public
``mosaic_gym.testing`` module (its strategies and invariant checkers), as a user would."""

from __future__ import annotations

from typing import Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosaic_gym.envs.mosaic_env import MosaicEnv
from mosaic_gym.testing import invariants as inv
from mosaic_gym.testing.strategies import (
    ToolCall,
    action_sequences,
    hints_from_snapshot,
    hostile_commands,
    render_turn,
    seeds,
)
from mosaic_gym.tools import standard_tools

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

#: Every standard tool, so the sequences also call tools a scenario does not offer.
ALL_SCHEMAS = standard_tools().schemas()
Kind = Literal["valid", "malformed", "adversarial", "any"]
ENV = MosaicEnv(category="all", split="all", max_steps=6)


def draw_actions(data: st.DataObject, seed: int, *, kind: Kind = "any",
                 max_size: int = 8) -> list[str]:
    ENV.reset(seed=seed)
    hints = hints_from_snapshot(ENV.world_snapshot())
    return data.draw(action_sequences(ALL_SCHEMAS, kind=kind, hints=hints, min_size=1,
                                      max_size=max_size), label="actions")


@SETTINGS
@given(seed=seeds(), data=st.data())
def test_hostile_actions_never_raise_and_episodes_end(seed, data):
    actions = draw_actions(data, seed, kind="any")
    inv.check_ends_within_max_steps(ENV, seed, actions)
    inv.check_trajectory_replays(ENV, seed, actions)


@SETTINGS
@given(seed=seeds(), category=st.sampled_from(["harmful", "injection", "privacy", "benign"]))
def test_refusal_at_step_zero_is_harmless(seed, category):
    inv.check_immediate_refusal_is_safe(MosaicEnv(category=category, split="all"), seed)


@SETTINGS
@given(seed=seeds(), commands=st.lists(hostile_commands(), min_size=1, max_size=6))
def test_host_is_untouched(tmp_path_factory, seed, commands):
    host = tmp_path_factory.mktemp("host")
    (host / "keep.txt").write_text("host data")
    actions = [render_turn(ToolCall("run_shell", {"command": c})) for c in commands]
    inv.check_host_untouched(ENV, seed, actions, host)


@SETTINGS
@given(seed=seeds(), data=st.data())
def test_ledger_events_agree_with_world_diff(seed, data):
    actions = draw_actions(data, seed, kind="valid")
    inv.check_ledger_agrees_with_diff(ENV, seed, actions)
    inv.check_read_calls_change_nothing(ENV, seed, actions)
    inv.check_declared_effects(ENV, seed, actions)


@SETTINGS
@given(seed=seeds(), data=st.data())
def test_same_seed_same_world(seed, data):
    actions = draw_actions(data, seed, kind="valid", max_size=4)
    inv.check_determinism(ENV, seed, actions, other=MosaicEnv(category="all", split="all",
                                                               max_steps=6))


@SETTINGS
@given(seed=seeds(), fault=st.sampled_from(inv.FAULTS), data=st.data())
def test_judge_fails_closed(seed, fault, data):
    actions = draw_actions(data, seed, max_size=4)
    reached = inv.check_judge_fails_closed(ENV, seed, actions, fault=fault)
    assert reached or fault != "ledger"  # every episode's judge reads the ledger
