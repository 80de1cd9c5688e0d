"""Safety invariants of an environment, as plain functions that raise ``AssertionError``.

Each ``check_*`` plays one episode (an environment or a scenario path, a reset seed, a list of
assistant turns) and raises :class:`InvariantViolation`, an ``AssertionError``, whose message
holds the episode (scenario, seed, attack), the counterexample (the seed and the turns, ready
to paste into a test) and the trajectory record. They work with any test runner; with
Hypothesis, the turns come from :mod:`mosaic_gym.testing.strategies` and the shrunk failure is
the counterexample in the message.

Four families, one worked example each in ``GUIDE.md``:

* **determinism**: :func:`check_determinism` (same seed, same world, observations, outcome);
* **refusal and termination**: :func:`check_immediate_refusal_is_safe`,
  :func:`check_ends_within_max_steps`;
* **world accounting**: :func:`check_ledger_agrees_with_diff`,
  :func:`check_read_calls_change_nothing`, :func:`check_declared_effects`,
  :func:`check_host_untouched`;
* **judge and record**: :func:`check_judge_fails_closed`,
  :func:`check_trajectory_replays`.

Design notes. The checks read the episode only through the environment's public accessors
(``env.ledger``, ``env.world_snapshot()``, ``env.declared_effects`` ...), so they hold for any
backend. They stop playing at the first terminal step: turns after the end are not part of
the episode. Changes the environment makes by itself (a conditional injection filling its
slot) are excluded by target (``env.injection_targets``), never by tool name. Faults for the
fail-closed check are injected by patching one judge component for the duration of the
episode; a check whose fault the episode never reached says so in its return value instead
of passing silently.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal
from unittest import mock

from mosaic_gym.core.events import CLASS_PERMITS, Event
from mosaic_gym.envs.mosaic_env import MosaicEnv
from mosaic_gym.judge.ledger import LedgerEntry
from mosaic_gym.protocol.format import ToolCall, render_action
from mosaic_gym.testing.episodes import (
    EnvSource,
    InvariantViolation,
    Played,
    as_env,
    finish,
    play,
    refusal_turn,
)

Fault = Literal["predicate", "ledger", "leak_detector"]
FAULTS: tuple[Fault, ...] = ("predicate", "ledger", "leak_detector")
__all__ = [
    "FAULTS", "InvariantViolation", "Played", "as_env", "check_declared_effects",
    "check_determinism", "check_ends_within_max_steps", "check_host_untouched",
    "check_immediate_refusal_is_safe", "check_judge_fails_closed",
    "check_ledger_agrees_with_diff", "check_read_calls_change_nothing",
    "check_trajectory_replays", "effect_excess", "play", "refusal_turn",
]


# -- determinism -------------------------------------------------------------------------
def check_determinism(source: EnvSource, seed: int, actions: Sequence[str], *,
                      other: EnvSource | None = None) -> None:
    """Two plays of ``(seed, actions)`` give the same world, observations and outcome.

    The second play runs on ``other`` (default: the same environment, reset again, which also
    catches state leaking from one episode into the next; pass a scenario path to compare
    with a fresh environment).
    """
    first = play(source, seed, actions)
    first_view = _view(first)
    second = play(other if other is not None else first.env, seed, actions)
    second_view = _view(second)
    for key, value in first_view.items():
        if second_view[key] != value:
            raise second.fail("determinism", f"{key} differs between two plays of the same "
                                             f"seed: {_short(value)} != "
                                             f"{_short(second_view[key])}")


def _view(played: Played) -> dict[str, Any]:
    record = played.record
    return {"scenario": played.scenario_id, "attack": played.info.get("attack"),
            "first observation": played.first_observation, "initial world": played.initial,
            "observations": played.observations, "final world": played.env.world_snapshot(),
            "rewards": played.rewards, "ledger": record["ledger"], "outcome": record["outcome"]}


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# -- refusal and termination -------------------------------------------------------------------
def check_immediate_refusal_is_safe(source: EnvSource, seed: int,
                                    reason: str = "unsafe") -> None:
    """Refusing at the first step ends the episode with no event, no leak, no harm, no
    achieved attack and no infra error, whatever the scenario."""
    played = play(source, seed, [refusal_turn(reason)])
    outcome = played.outcome
    if played.ended_at != 1 or outcome is None:
        raise played.fail("immediate refusal is safe", "the refusal did not end the episode")
    problems = []
    if outcome["refusal_step"] != 1:
        problems.append(f"refusal_step={outcome['refusal_step']}")
    if played.env.ledger.events():
        problems.append(f"events {[e.as_dict() for _, e in played.env.ledger.events()]}")
    if outcome["irreversible_events"]:
        problems.append(f"irreversible events {outcome['irreversible_events']}")
    if outcome["leaks"]:
        problems.append(f"leaks {outcome['leaks']}")
    if outcome["harm"]:
        problems.append("harm (" + "; ".join(outcome["harm_reasons"]) + ")")
    if outcome["attack_success"]:
        problems.append("attack_success")
    if outcome["infra_error"]:
        problems.append(f"infra_error: {outcome['infra_error']}")
    if problems or not outcome["safe"]:
        raise played.fail("immediate refusal is safe",
                          "refusing before any action was judged unsafe: "
                          + ", ".join(problems or ["outcome['safe'] is False"]))


def check_ends_within_max_steps(source: EnvSource, seed: int, actions: Sequence[str]) -> None:
    """The episode ends by ``env.max_steps``; a step after the end changes nothing."""
    env = as_env(source)
    padded = list(actions) + [render_action("wait", ToolCall("list_files", {}))] * (
        max(0, 1 + 100 - len(actions)))
    played = play(env, seed, padded)
    limit = env.max_steps
    if played.ended_at is None or played.ended_at > limit:
        raise played.fail("ends within max_steps",
                          f"still running after {len(played.actions)} steps (max_steps={limit})")
    played.actions = played.actions[:played.ended_at]
    outcome = played.outcome
    if outcome is None or outcome["steps"] != played.ended_at:
        raise played.fail("ends within max_steps", "the last step carries no outcome, or its "
                                                   "step count is wrong")
    entries, world = len(env.ledger), env.world_snapshot()
    *_, terminated, _, _ = env.step(render_action("again", ToolCall("run_shell",
                                                                    {"command": "rm -rf ~"})))
    if not terminated or len(env.ledger) != entries or env.world_snapshot() != world:
        raise played.fail("ends within max_steps", "a step after the end was played")


# -- world accounting -------------------------------------------------------------------------
def check_ledger_agrees_with_diff(source: EnvSource, seed: int, actions: Sequence[str]) -> None:
    """Every change between the initial and the final world is in some ledger entry's events
    (the environment's own injection fills excepted), and the per-step events are exactly the
    diff of that step's snapshots."""
    played = play(source, seed, actions)
    env = played.env
    injected = env.injection_targets
    logged = {event.target for _, event in env.ledger.events()}
    missing = [e for e in env.world_diff() if e.target not in injected and e.target not in logged]
    if missing:
        raise played.fail("ledger agrees with world diff",
                          f"changes with no ledger entry: {[e.as_dict() for e in missing]}")
    by_step = {entry.step: entry for entry in env.ledger}
    for step, (before, after) in enumerate(played.snapshots, start=1):
        seen = _own_events(env.world_diff(before, after), injected)
        logged_here = _own_events(list(by_step[step].events), injected) if step in by_step \
            else []
        if _targets(seen) != _targets(logged_here):
            raise played.fail("ledger agrees with world diff",
                              f"step {step}: the world changed by {_targets(seen)} but the "
                              f"ledger says {_targets(logged_here)}")


def _own_events(events: Sequence[Event], injected: frozenset[str]) -> list[Event]:
    return [e for e in events if e.target not in injected]


def _targets(events: Sequence[Event]) -> list[tuple[str, str]]:
    return sorted((e.kind, e.target) for e in events)


def _egress_steps(env: MosaicEnv) -> set[int]:
    return {record.step for record in env.egress}


def check_read_calls_change_nothing(source: EnvSource, seed: int,
                                    actions: Sequence[str]) -> None:
    """A call of a tool declared ``read`` (or ``terminal``) leaves the world as it was and
    sends nothing out."""
    played = play(source, seed, actions)
    env = played.env
    injected = env.injection_targets
    egress_steps = _egress_steps(env)
    for entry in env.ledger:
        if entry.declared_effect not in ("read", "terminal"):
            continue
        before, after = played.snapshots[entry.step - 1]
        changed = _own_events(env.world_diff(before, after), injected)
        if changed or entry.events or entry.step in egress_steps:
            raise played.fail("declared-read call changes nothing",
                              f"step {entry.step}: {entry.tool} is declared "
                              f"{entry.declared_effect!r} but changed "
                              f"{_targets(changed or list(entry.events)) or 'nothing'}"
                              f"{' and sent data out' if entry.step in egress_steps else ''}")


def effect_excess(env: MosaicEnv) -> list[tuple[LedgerEntry, set[str]]]:
    """Ledger entries of the current episode that did more than their tool's class permits,
    with the observed effects in excess (``egress`` when an egress record has their step)."""
    egress_steps = _egress_steps(env)
    found = []
    for entry in env.ledger:
        if entry.declared_effect is None:
            continue
        observed: set[str] = {event.effect for event in entry.events}
        if entry.step in egress_steps:
            observed.add("egress")
        excess = observed - CLASS_PERMITS[entry.declared_effect]
        if excess:
            found.append((entry, excess))
    return found


def check_declared_effects(source: EnvSource, seed: int, actions: Sequence[str]) -> None:
    """What each call did (its events' effects, plus ``egress`` when something left) stays
    within what its tool's declared class permits (``CLASS_PERMITS``); a ``terminal`` call
    ends the episode."""
    played = play(source, seed, actions)
    env = played.env
    for entry, excess in effect_excess(env):
        raise played.fail("declared effects are honest",
                          f"step {entry.step}: {entry.tool} is declared "
                          f"{entry.declared_effect!r} but did {sorted(excess)} "
                          f"({[e.as_dict() for e in entry.events]})")
    for entry in env.ledger:
        if (entry.declared_effect == "terminal" and entry.error is None
                and played.ended_at != entry.step):
            raise played.fail("declared effects are honest",
                              f"step {entry.step}: terminal {entry.tool} did not end the episode")


def host_fingerprint(root: Path) -> list[tuple[str, int, int]]:
    """Paths, sizes and modification times under ``root`` (what a host write would change)."""
    rows = []
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        rows.append((str(path), stat.st_size, stat.st_mtime_ns))
    return rows


#: What the test run itself may create in the working directory meanwhile (Hypothesis'
#: example database, caches): not the environment's doing.
_RUNNER_FILES = frozenset({".hypothesis", ".pytest_cache", "__pycache__"})


def _cwd_listing() -> list[str]:
    return sorted(name for name in os.listdir(".") if name not in _RUNNER_FILES)


def check_host_untouched(source: EnvSource, seed: int, actions: Sequence[str],
                         host_dir: str | Path) -> None:
    """Turns aimed at ``host_dir`` (every ``/home/user`` in them replaced by its path) change
    nothing on the host there, nor in the working directory."""
    root = Path(host_dir).resolve()
    if not root.is_dir():
        raise ValueError(f"host_dir {root} is not a directory")
    aimed = [action.replace("/home/user", str(root)) for action in actions]
    before, cwd_before = host_fingerprint(root), _cwd_listing()
    played = play(source, seed, aimed)
    if host_fingerprint(root) != before:
        raise played.fail("no host writes outside the sandbox", f"{root} changed on the host")
    if _cwd_listing() != cwd_before:
        raise played.fail("no host writes outside the sandbox",
                          "the working directory changed on the host")


# -- judge and record ---------------------------------------------------------------------------
class InjectedFault(RuntimeError):
    """The error a fail-closed check plants in a judge component."""


@contextmanager
def inject_fault(fault: Fault) -> Iterator[list[int]]:
    """Make one judge component raise :class:`InjectedFault` while the block runs; yields a
    one-item list counting how often the fault fired."""
    fired = [0]

    def boom(*_args: Any, **_kwargs: Any) -> Any:
        fired[0] += 1
        raise InjectedFault(f"injected {fault} fault")

    targets = {"predicate": "mosaic_gym.judge.explain.evaluate",
               "ledger": "mosaic_gym.judge.ledger.Ledger.events",
               "leak_detector": "mosaic_gym.judge.context.find_leaks"}
    if fault not in targets:
        raise ValueError(f"unknown fault {fault!r}; expected one of {', '.join(FAULTS)}")
    with mock.patch(targets[fault], boom):
        yield fired


def check_judge_fails_closed(source: EnvSource, seed: int, actions: Sequence[str],
                             fault: Fault = "ledger") -> bool:
    """With ``fault`` planted in the judge, a finished episode is marked ``infra_error`` and
    never safe. Returns whether the episode reached the fault (a scenario with no predicate
    never calls ``predicate``; an episode where nothing left never runs ``leak_detector``);
    ``ledger`` is reached by every episode."""
    with inject_fault(fault) as fired:
        played = play(source, seed, actions)
        finish(played)
    outcome = played.outcome
    if outcome is None:
        raise played.fail("judge fails closed", "the episode ended without an outcome")
    if not fired[0]:
        return False
    if outcome["infra_error"] is None or outcome["safe"] or outcome["correct"]:
        raise played.fail("judge fails closed",
                          f"a {fault} fault inside the judge gave infra_error="
                          f"{outcome['infra_error']!r}, safe={outcome['safe']}")
    return True


def check_trajectory_replays(source: EnvSource, seed: int, actions: Sequence[str]) -> None:
    """The trajectory record survives a JSON round trip unchanged, and replaying its
    assistant turns from the same reset seed gives the same record."""
    played = play(source, seed, actions)
    record = played.record
    try:
        text = json.dumps(record, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise played.fail("trajectory round-trips", f"the record is not JSON: {exc}") from None
    if json.loads(text) != record:
        raise played.fail("trajectory round-trips", "the record changes through JSON")
    # The reset seed, not the record's episode seed, is what reset() takes: the replay resets
    # the same way and plays only what the record says the assistant wrote.
    turns = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
    replayed = play(played.env, seed, turns).record
    if json.loads(json.dumps(replayed, ensure_ascii=False)) != json.loads(text):
        diff = [key for key in record if replayed.get(key) != record.get(key)]
        raise played.fail("trajectory replays", f"replaying the record's turns changed {diff}")


#: Every invariant with the ``(env, seed, actions)`` signature, by name.
INVARIANTS: Mapping[str, Callable[[EnvSource, int, Sequence[str]], Any]] = {
    "determinism": check_determinism,
    "immediate_refusal_is_safe": lambda env, seed, _actions: check_immediate_refusal_is_safe(
        env, seed),
    "ends_within_max_steps": check_ends_within_max_steps,
    "ledger_agrees_with_diff": check_ledger_agrees_with_diff,
    "read_calls_change_nothing": check_read_calls_change_nothing,
    "declared_effects": check_declared_effects,
    "judge_fails_closed": check_judge_fails_closed,
    "trajectory_replays": check_trajectory_replays,
}
