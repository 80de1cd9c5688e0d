"""Each invariant checker catches the defect it names: every test plants one defect in an
otherwise healthy environment and expects the matching :class:`InvariantViolation` (a checker
that cannot fail would pass these by accident only if it never looked)."""

from __future__ import annotations

import dataclasses
import itertools
import sys
from pathlib import Path

import pytest

from mosaic_gym.envs import mosaic_env as env_module
from mosaic_gym.envs.mosaic_env import MosaicEnv
from mosaic_gym.judge.ledger import Ledger
from mosaic_gym.testing import invariants as inv
from mosaic_gym.testing.strategies import ToolCall, render_turn
from mosaic_gym.tools import ToolRegistry, make_tool, standard_tools
from mosaic_gym.world.world import World

SCENARIO = "devops.lock-down-env-file"  # read_file, write_file, run_shell; a Faker secret
WRITE_NEW = render_turn(ToolCall("write_file", {"path": "/home/user/new.txt", "content": "hi"}))
READ_ENV = render_turn(ToolCall("read_file", {"path": "/home/user/app/.env"}))


def record_of_dict(record):
    """A trajectory as a dict (a dict already, or a typed record)."""
    return dict(record) if isinstance(record, dict) else record.model_dump(mode="json")


def make_env(**kwargs) -> MosaicEnv:
    return MosaicEnv(scenario=SCENARIO, split="all", **kwargs)


def with_tool(env: MosaicEnv, name: str, function, effect: str) -> MosaicEnv:
    """``env`` with the standard tool ``name`` replaced by ``function`` (a planted defect)."""
    swapped = make_tool(function, effect=effect, name=name, uses_sandbox=True)
    env.all_tools = ToolRegistry([swapped if tool.name == name else tool
                                  for tool in standard_tools().values()])
    return env


def sneaky_read(world: World, path: str) -> str:
    """Read a file (and secretly write another).

    Args:
        path: The file to read.
    """
    world.sandbox.write_file("/home/user/sneaky.txt", b"x")
    return "content"


def test_the_healthy_environment_passes_every_invariant(tmp_path):
    env = make_env()
    actions = [READ_ENV, WRITE_NEW, render_turn("Done.")]
    for check in inv.INVARIANTS.values():
        check(env, 3, actions)
    inv.check_host_untouched(env, 3, actions, tmp_path)


def test_determinism_catches_a_world_that_changes_with_each_reset(monkeypatch):
    counter = itertools.count()
    real = env_module.resolve
    monkeypatch.setattr(env_module, "resolve",
                        lambda variant, seed, faker=None: real(variant, next(counter),
                                                               faker=faker))
    with pytest.raises(inv.InvariantViolation, match="determinism.*differs"):
        inv.check_determinism(make_env(), 0, [READ_ENV])


def test_ends_within_max_steps_catches_an_episode_that_runs_on():
    class Overrunning(MosaicEnv):
        @property
        def max_steps(self) -> int:  # promises 2 steps, truncates after 5
            return 2

    env = Overrunning(scenario=SCENARIO, split="all", max_steps=5)
    with pytest.raises(inv.InvariantViolation, match="still running after 5 steps"):
        inv.check_ends_within_max_steps(env, 0, [])


def test_ledger_check_catches_a_ledger_that_forgets_events(monkeypatch):
    real = Ledger.record
    monkeypatch.setattr(Ledger, "record",
                        lambda self, entry: real(self, dataclasses.replace(entry, events=())))
    with pytest.raises(inv.InvariantViolation, match="no ledger entry.*new.txt"):
        inv.check_ledger_agrees_with_diff(make_env(), 0, [WRITE_NEW])


def test_read_and_effect_checks_catch_a_read_tool_that_writes():
    env = with_tool(make_env(), "read_file", sneaky_read, "read")
    with pytest.raises(inv.InvariantViolation, match="declared 'read' but changed"):
        inv.check_read_calls_change_nothing(env, 0, [READ_ENV])
    with pytest.raises(inv.InvariantViolation, match=r"declared 'read' but did \['write'\]"):
        inv.check_declared_effects(env, 0, [READ_ENV])


def test_host_check_catches_a_tool_that_writes_on_the_host(tmp_path):
    def host_write(world: World, path: str, content: str) -> str:
        """Write a file, on the real disk.

        Args:
            path: Where.
            content: What.
        """
        Path(path).write_text(content)
        return "written"

    env = with_tool(make_env(), "write_file", host_write, "irreversible")
    with pytest.raises(inv.InvariantViolation, match="changed on the host"):
        inv.check_host_untouched(env, 0, [WRITE_NEW], tmp_path)
    assert (tmp_path / "new.txt").exists()  # the planted defect really wrote there


def test_fail_closed_check_catches_a_judge_that_swallows_errors(monkeypatch):
    env = make_env()
    env.reset(seed=0)
    episode_module = sys.modules[type(env.episode).__module__]  # where the episode calls it
    real = episode_module.judge

    def fail_open(ctx, outcome):
        result = real(ctx, outcome)
        result.infra_error = None
        return result

    monkeypatch.setattr(episode_module, "judge", fail_open)
    with pytest.raises(inv.InvariantViolation, match="ledger fault inside the judge"):
        inv.check_judge_fails_closed(env, 0, [READ_ENV], fault="ledger")


def test_fail_closed_check_says_when_its_fault_was_never_reached():
    # Nothing left the machine, so the leak detector never ran: reported, not passed.
    assert inv.check_judge_fails_closed(make_env(), 0, [READ_ENV],
                                        fault="leak_detector") is False
    assert inv.check_judge_fails_closed(make_env(), 0, [READ_ENV], fault="ledger") is True


def test_replay_check_catches_a_record_that_is_not_json(monkeypatch):
    real = MosaicEnv.trajectory
    monkeypatch.setattr(MosaicEnv, "trajectory",
                        lambda self: {**record_of_dict(real(self)), "tags": {"a", "b"}})
    with pytest.raises(inv.InvariantViolation, match="not JSON"):
        inv.check_trajectory_replays(make_env(), 0, [READ_ENV])


def test_replay_check_catches_a_record_that_does_not_replay(monkeypatch):
    real = MosaicEnv.trajectory
    counter = itertools.count()
    monkeypatch.setattr(MosaicEnv, "trajectory",
                        lambda self: {**record_of_dict(real(self)), "serial": next(counter)})
    with pytest.raises(inv.InvariantViolation, match=r"replaying .* changed \['serial'\]"):
        inv.check_trajectory_replays(make_env(), 0, [READ_ENV])


def test_a_violation_carries_episode_counterexample_and_record():
    env = with_tool(make_env(), "read_file", sneaky_read, "read")
    with pytest.raises(inv.InvariantViolation) as caught:
        inv.check_read_calls_change_nothing(env, 7, [READ_ENV])
    violation = caught.value
    assert isinstance(violation, AssertionError)
    text = str(violation)
    assert f"scenario='{violation.scenario_id}' seed=7" in text
    assert violation.scenario_id.startswith(SCENARIO)
    assert f"counterexample: seed=7, actions={[READ_ENV]!r}" in text
    assert '"declared_effect": "read"' in text and "[system prompt]" in text
    assert violation.record["scenario_id"] == violation.scenario_id and violation.seed == 7
    assert violation.record["tools"]  # the full record is kept on the exception


def test_as_env_accepts_paths_wrappers_and_nothing_else(library):
    import gymnasium as gym

    wrapped = gym.make("mosaic/Scenario-v0", scenario=SCENARIO)
    assert inv.as_env(wrapped) is wrapped.unwrapped
    assert isinstance(inv.as_env(library[0].source), MosaicEnv)
    with pytest.raises(TypeError, match="MosaicEnv"):
        inv.as_env(object())
