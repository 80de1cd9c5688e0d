"""The invariant set run over scenario files, with Hypothesis choosing seeds and turns.

This is what ``pytest --mosaic-scenarios DIR`` and ``mosaic scenarios check --properties DIR``
run: for every scenario file, every invariant of :data:`PROPERTIES` is a Hypothesis test over
reset seeds (so over the file's family variants, attack strategies and Faker values) and, where
the invariant takes turns, over action sequences drawn from that episode's own tool schemas,
with argument hints taken from its world. A failure is reported with Hypothesis' shrunk
example, which the :class:`~mosaic_gym.testing.invariants.InvariantViolation` message spells
out as ``seed=..., actions=[...]``.

Two profiles: ``fast`` (CI: 15 examples per invariant, derandomised so a red run reproduces,
no example database) and ``thorough`` (exploration: 300 examples, random, with the database
so a found failure is replayed first next time). Wall-clock deadlines are off in both: the
machines are shared, and a slow example is not a bug.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mosaic_gym.envs.mosaic_env import MosaicEnv
from mosaic_gym.scenario.loader import iter_scenario_files
from mosaic_gym.testing import invariants as inv
from mosaic_gym.testing.strategies import action_sequences, hints_from_snapshot, seeds

PROFILES: dict[str, dict[str, Any]] = {
    "fast": {"max_examples": 15, "derandomize": True, "database": None, "deadline": None,
             "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much]},
    "thorough": {"max_examples": 300, "deadline": None,
                 "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much]},
}


#: Every phase but ``explain``, whose coverage notes only bury the counterexample.
_PHASES = tuple(phase for phase in Phase if phase.name != "explain")


def profile_settings(profile: str) -> settings:
    """The Hypothesis settings of a named profile; ``ValueError`` names the known ones."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected {', '.join(PROFILES)}")
    return settings(report_multiple_bugs=False, print_blob=False,
                    phases=_PHASES, **PROFILES[profile])


def register_profiles() -> None:
    """Register ``mosaic-fast`` and ``mosaic-thorough`` with Hypothesis (for ``load_profile``)."""
    for name, values in PROFILES.items():
        settings.register_profile(f"mosaic-{name}", **values)


@dataclass(frozen=True)
class PropertyResult:
    """One invariant over one scenario file."""

    scenario: str
    invariant: str
    passed: bool
    detail: str = ""


Check = Callable[[MosaicEnv, int, list[str]], Any]


def _needs_turns(name: str) -> bool:
    return name != "immediate_refusal_is_safe"


def _host_check(host_dir: Path) -> Check:
    def check(env: MosaicEnv, seed: int, actions: list[str]) -> None:
        inv.check_host_untouched(env, seed, actions, host_dir)
    return check


def _fail_closed(env: MosaicEnv, seed: int, actions: list[str]) -> None:
    for fault in inv.FAULTS:
        inv.check_judge_fails_closed(env, seed, actions, fault=fault)


PROPERTIES: tuple[str, ...] = (*inv.INVARIANTS, "host_untouched")


def run_property(source: str | Path, name: str, profile: str = "fast", *,
                 max_turns: int = 6) -> None:
    """Run invariant ``name`` on scenario ``source`` under Hypothesis; raises the (shrunk)
    :class:`~mosaic_gym.testing.invariants.InvariantViolation` when it fails."""
    if name not in PROPERTIES:
        raise ValueError(f"unknown invariant {name!r}; expected one of {', '.join(PROPERTIES)}")
    env = inv.as_env(source)
    host_dir = Path(tempfile.mkdtemp(prefix="mosaic-host-"))
    (host_dir / "keep.txt").write_text("host data\n", encoding="utf-8")
    check: Check
    if name == "host_untouched":
        check = _host_check(host_dir)
    elif name == "judge_fails_closed":
        check = _fail_closed
    else:
        check = inv.INVARIANTS[name]

    @profile_settings(profile)
    @given(seed=seeds(), data=st.data())
    def property_test(seed: int, data: st.DataObject) -> None:
        actions: list[str] = []
        if _needs_turns(name):
            _, info = env.reset(seed=seed)
            hints = hints_from_snapshot(env.world_snapshot())
            actions = data.draw(action_sequences(info["tools"], hints=hints,
                                                 max_size=max_turns), label="actions")
        check(env, seed, actions)

    try:
        property_test()
    finally:
        env.close()
        shutil.rmtree(host_dir, ignore_errors=True)


def check_scenario(source: str | Path, profile: str = "fast",
                   properties: Sequence[str] = PROPERTIES) -> list[PropertyResult]:
    """Every invariant of ``properties`` over one scenario file (or id); never raises for a
    failing invariant or a broken file: each becomes a failed :class:`PropertyResult`."""
    results = []
    for name in properties:
        try:
            run_property(source, name, profile)
        except AssertionError as exc:
            notes = "\n".join(getattr(exc, "__notes__", ()))
            results.append(PropertyResult(str(source), name, False,
                                          f"{exc}\n{notes}".strip()))
        except Exception as exc:  # noqa: BLE001 - a broken file is a result, not a crash
            results.append(PropertyResult(str(source), name, False,
                                          f"{type(exc).__name__}: {exc}"))
        else:
            results.append(PropertyResult(str(source), name, True))
    return results


def scenario_files(paths: Iterable[str | Path]) -> list[Path]:
    """The scenario files under ``paths`` (directories searched for ``*.yaml``/``*.yml``)."""
    return iter_scenario_files(paths)


def check_paths(paths: Iterable[str | Path], profile: str = "fast",
                properties: Sequence[str] = PROPERTIES) -> list[PropertyResult]:
    """:func:`check_scenario` over every scenario file under ``paths``."""
    return [result for path in scenario_files(paths)
            for result in check_scenario(path, profile, properties)]
