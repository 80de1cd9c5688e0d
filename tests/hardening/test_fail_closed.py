"""Issue 10 item 3: any failure in tools, snapshot, diff or judge gives ``infra_error``.

A failure is injected at each point, on both backends, with each kind of exception an
attacker (or a bug) can produce: an ordinary ``Exception``, ``MemoryError``,
``RecursionError``, ``SystemExit`` (what ``python: "sys:exit"`` raises) and a bare
``BaseException`` subclass. Every time, ``env.step`` returns; the episode ends; its
outcome says ``infra_error`` and is not safe; the next ``reset()`` works on a fresh
sandbox. Only ``KeyboardInterrupt`` goes through: the user must be able to stop a run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mosaic_gym.envs import episode as episode_module
from mosaic_gym.envs.mosaic_env import MosaicEnv
from mosaic_gym.world.world import World
from tests.hardening.engine import backends
from tests.hardening.scenarios import SHELL_SCENARIO, action, write_scenario


class Strange(BaseException):
    """Neither Exception nor an interrupt: what a broken extension might raise."""


FAILURES: dict[str, Callable[[], BaseException]] = {
    "exception": lambda: RuntimeError("boom"),
    "memory": MemoryError,
    "recursion": lambda: RecursionError("deep"),
    "system-exit": lambda: SystemExit(3),
    "base-exception": lambda: Strange("odd"),
}


def _raiser(make: Callable[[], BaseException], after: int = 0) -> Callable[..., Any]:
    calls = {"n": 0}

    def fail(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > after:
            raise make()
        return ORIGINALS[fail](*args, **kwargs)

    return fail


ORIGINALS: dict[Any, Any] = {}


def _inject(monkeypatch: pytest.MonkeyPatch, env: MosaicEnv, point: str,
            make: Callable[[], BaseException]) -> None:
    """Make ``point`` raise ``make()`` from the next call on (after reset)."""
    if point == "tool":
        assert env.sandbox is not None
        fail = _raiser(make)
        ORIGINALS[fail] = env.sandbox.exec
        monkeypatch.setattr(env.sandbox, "exec", fail)
    elif point == "snapshot":
        fail = _raiser(make)
        ORIGINALS[fail] = World.snapshot
        monkeypatch.setattr(World, "snapshot", fail)
    elif point == "diff":
        fail = _raiser(make)
        ORIGINALS[fail] = World.diff
        monkeypatch.setattr(World, "diff", fail)
    elif point == "judge":
        fail = _raiser(make)
        ORIGINALS[fail] = episode_module.judge
        monkeypatch.setattr(episode_module, "judge", fail)
    else:
        raise AssertionError(point)


@pytest.fixture(params=backends())
def env(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[MosaicEnv]:
    path = write_scenario(tmp_path, SHELL_SCENARIO)
    environment = MosaicEnv(scenario=str(path), backend=request.param, max_steps=3)
    yield environment
    environment.close()


@pytest.mark.parametrize("kind", sorted(FAILURES))
@pytest.mark.parametrize("point", ["tool", "snapshot", "diff", "judge"])
def test_failure_is_an_infra_error_never_safe(env: MosaicEnv, point: str, kind: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    env.reset(seed=1)
    with monkeypatch.context() as patch:
        _inject(patch, env, point, FAILURES[kind])
        if point == "judge":  # the judge runs when the episode ends
            obs, reward, terminated, truncated, info = env.step(action("run_shell",
                                                                       command="echo hi"))
            if not (terminated or truncated):
                obs, reward, terminated, truncated, info = env.step("<answer>done</answer>")
        else:
            obs, reward, terminated, truncated, info = env.step(
                action("run_shell", command="echo hi"))
        assert terminated or truncated, obs
        outcome = info["outcome"]
    assert outcome["infra_error"] is not None, outcome
    assert outcome["termination"] == "infra_error"
    assert not outcome["safe"] and not outcome["correct"]
    # The broken episode stays over; the next reset gets a working sandbox.
    again = env.step(action("run_shell", command="echo again"))
    assert again[2] and again[4]["outcome"] == outcome
    env.reset(seed=2)
    obs, *_ = env.step(action("run_shell", command="cat notes.txt"))
    assert "keep me" in obs, obs


def test_a_failed_sandbox_is_replaced_at_reset(env: MosaicEnv,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    env.reset(seed=1)
    first = env.sandbox
    with monkeypatch.context() as patch:
        _inject(patch, env, "snapshot", FAILURES["exception"])
        env.step(action("run_shell", command="echo hi"))
    env.reset(seed=1)
    assert env.sandbox is not first


def test_keyboard_interrupt_is_not_swallowed(env: MosaicEnv,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    env.reset(seed=1)
    with monkeypatch.context() as patch:
        _inject(patch, env, "tool", KeyboardInterrupt)
        with pytest.raises(KeyboardInterrupt):
            env.step(action("run_shell", command="echo hi"))


def test_sys_exit_from_a_trusted_predicate_is_an_infra_error(tmp_path: Any) -> None:
    """``python: "sys:exit"``, even when trusted, cannot end the process."""
    text = SHELL_SCENARIO.replace("  utility: {file_exists: /home/user/notes.txt}",
                                  '  utility: {python: "sys:exit"}')
    path = write_scenario(tmp_path, text)
    env = MosaicEnv(scenario=str(path), trust_code=True)
    env.reset(seed=0)
    *_, info = env.step("<answer>done</answer>")
    outcome = info["outcome"]
    assert outcome["termination"] == "infra_error" and "SystemExit" in outcome["infra_error"]
    env.close()
