"""Playing one episode for an invariant, and reporting a violation of it.

Part of :mod:`mosaic_gym.testing.invariants` (re-exported there; import from there).
:func:`play` resets with a seed and steps turns until the episode ends, keeping the world
snapshot before and after every step, which is what the checks compare. An
:class:`InvariantViolation` is an ``AssertionError`` (so any test runner reports it) whose
message is built for the person who has to fix the bug: the episode, the counterexample as
``seed=..., actions=[...]`` ready to paste into a test, the verdict, then the record without
what every episode repeats (the system prompt, the tool schemas); the full record stays on
the exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mosaic_gym.envs.mosaic_env import MosaicEnv
from mosaic_gym.protocol.format import ToolCall, render_action
from mosaic_gym.world.world import WorldSnapshot

EnvSource = Any  # a MosaicEnv, a gymnasium wrapper around one, or a scenario path / id
_RECORD_CHARS = 6_000
_VERDICT_KEYS = ("termination", "steps", "safe", "harm", "harm_reasons", "leaks",
                 "irreversible_events", "attack_success", "infra_error")


class InvariantViolation(AssertionError):
    """An invariant failed; the message carries episode, counterexample and record."""

    def __init__(self, invariant: str, detail: str, *, scenario_id: str | None, seed: int,
                 actions: Sequence[str], record: Mapping[str, Any] | None) -> None:
        self.invariant = invariant
        self.detail = detail
        self.scenario_id = scenario_id
        self.seed = seed
        self.actions = list(actions)
        self.record = record
        attack = record.get("attack") if record else None
        outcome = record.get("outcome") if record else None
        verdict = ({key: outcome.get(key) for key in _VERDICT_KEYS}
                   if isinstance(outcome, Mapping) else None)
        text = (json.dumps(_compact(record), ensure_ascii=False, default=str)
                if record else "(none)")
        if len(text) > _RECORD_CHARS:
            text = text[:_RECORD_CHARS] + f"... [{len(text) - _RECORD_CHARS} more characters]"
        super().__init__(
            f"invariant {invariant!r} violated: {detail}\n"
            f"  episode: scenario={scenario_id!r} seed={seed} attack={attack!r}\n"
            f"  counterexample: seed={seed}, actions={self.actions!r}\n"
            f"  outcome: {json.dumps(verdict, default=str)}\n"
            f"  record: {text}")


def _compact(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record without what every episode repeats (system prompt, tool schemas); the full
    record stays on the exception's ``record``."""
    compact = {key: value for key, value in record.items() if key != "tools"}
    compact["messages"] = [
        {**m, "content": "[system prompt]"} if m.get("role") == "system" else m
        for m in record.get("messages") or ()]
    return compact


def record_of(env: MosaicEnv) -> dict[str, Any]:
    """``env.trajectory()`` as JSON-ready data, whether the environment returns the record
    as a dict or as a typed (pydantic) record."""
    record = env.trajectory()
    if isinstance(record, Mapping):
        return dict(record)
    dump = getattr(record, "model_dump", None)
    if dump is None:
        raise TypeError(f"unexpected trajectory type {type(record).__name__}")
    data: dict[str, Any] = dump(mode="json")
    return data


def verdict(outcome: Any) -> dict[str, Any] | None:
    """An episode's outcome (``info["outcome"]``) as a plain mapping with ``safe`` and
    ``correct`` (an ``Outcome``, its dict form, or a typed record alike)."""
    if outcome is None:
        return None
    if isinstance(outcome, Mapping):
        return dict(outcome)
    for method in ("as_dict", "model_dump"):
        if hasattr(outcome, method):
            data: dict[str, Any] = getattr(outcome, method)()
            return data
    raise TypeError(f"unexpected outcome type {type(outcome).__name__}")


def as_env(source: EnvSource, **kwargs: Any) -> MosaicEnv:
    """The :class:`MosaicEnv` behind ``source``: an env (wrapped or not) as is, a scenario
    path or id as a new ``MosaicEnv(scenario=..., split="all", **kwargs)``."""
    if isinstance(source, (str, Path)):
        return MosaicEnv(scenario=str(source), split="all", **kwargs)
    env = getattr(source, "unwrapped", source)
    if not isinstance(env, MosaicEnv):
        raise TypeError(f"expected a MosaicEnv, a wrapper of one or a scenario path, not "
                        f"{type(source).__name__}")
    return env


def refusal_turn(reason: str = "unsafe") -> str:
    """A well-formed turn calling ``refusal_tool``."""
    return render_action("no", ToolCall("refusal_tool", {"reason": reason}))


@dataclass
class Played:
    """One episode as the invariants see it."""

    env: MosaicEnv
    seed: int
    actions: list[str]  # the turns actually played (up to the end)
    first_observation: str
    observations: list[str] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    initial: WorldSnapshot | None = None
    #: World snapshot before and after each step.
    snapshots: list[tuple[WorldSnapshot, WorldSnapshot]] = field(default_factory=list)
    ended_at: int | None = None  # 1-based step that terminated or truncated
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def record(self) -> dict[str, Any]:
        """The trajectory record as JSON-ready data."""
        return record_of(self.env)

    @property
    def outcome(self) -> dict[str, Any] | None:
        """The verdict as a plain mapping once the episode ended (``None`` before)."""
        return verdict(self.info.get("outcome"))

    @property
    def scenario_id(self) -> str | None:
        return self.info.get("scenario_id")

    def fail(self, invariant: str, detail: str) -> InvariantViolation:
        try:
            record: dict[str, Any] | None = self.record
        except RuntimeError:
            record = None
        return InvariantViolation(invariant, detail, scenario_id=self.scenario_id,
                                  seed=self.seed, actions=self.actions, record=record)


def play(source: EnvSource, seed: int, actions: Sequence[str], *,
         options: Mapping[str, Any] | None = None) -> Played:
    """Reset ``source`` with ``seed`` and step ``actions`` until the episode ends."""
    env = as_env(source)
    first, info = env.reset(seed=seed, options=dict(options) if options else None)
    played = Played(env, seed, [], first, initial=env.world_snapshot(), info=info)
    for count, action in enumerate(actions, start=1):
        before = env.world_snapshot()
        obs, reward, terminated, truncated, info = env.step(action)
        played.actions.append(action)
        played.observations.append(obs)
        played.rewards.append(reward)
        played.snapshots.append((before, env.world_snapshot()))
        played.info = info
        if terminated or truncated:
            played.ended_at = count
            break
    return played


def finish(played: Played) -> None:
    """End a still-running episode with a final answer, so the judge runs."""
    if played.ended_at is None:
        answer = render_action("end", "Stopping here.")
        env = played.env
        before = env.world_snapshot()
        obs, reward, terminated, truncated, info = env.step(answer)
        played.actions.append(answer)
        played.observations.append(obs)
        played.rewards.append(reward)
        played.snapshots.append((before, env.world_snapshot()))
        played.info = info
        played.ended_at = len(played.actions)
