"""Example 3, world accounting: the ledger tells the truth, tools keep their declared class,
and nothing outside the sandbox is touched."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosaic_gym.testing.invariants import (
    check_declared_effects,
    check_host_untouched,
    check_ledger_agrees_with_diff,
    check_read_calls_change_nothing,
)
from mosaic_gym.testing.strategies import (
    ToolCall,
    action_sequences,
    hints_from_snapshot,
    hostile_commands,
    render_turn,
    seeds,
)

REUSE_ENV = settings(suppress_health_check=[HealthCheck.function_scoped_fixture],
                     deadline=None)


def draw_actions(env, seed, data):
    _, info = env.reset(seed=seed)
    hints = hints_from_snapshot(env.world_snapshot())
    return data.draw(action_sequences(info["tools"], hints=hints, kind="valid", max_size=6))


@REUSE_ENV
@given(seed=seeds(), data=st.data())
def test_ledger_and_declared_classes_tell_the_truth(mosaic_env, seed, data):
    actions = draw_actions(mosaic_env, seed, data)
    check_ledger_agrees_with_diff(mosaic_env, seed, actions)
    check_read_calls_change_nothing(mosaic_env, seed, actions)
    check_declared_effects(mosaic_env, seed, actions)


@REUSE_ENV
@given(seed=seeds(), commands=st.lists(hostile_commands(), min_size=1, max_size=4))
def test_hostile_shell_never_touches_the_host(mosaic_env, tmp_path_factory, seed, commands):
    host = tmp_path_factory.mktemp("host")
    (host / "keep.txt").write_text("host data")
    actions = [render_turn(ToolCall("run_shell", {"command": c})) for c in commands]
    check_host_untouched(mosaic_env, seed, actions, host)
