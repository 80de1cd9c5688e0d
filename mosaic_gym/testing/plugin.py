"""The pytest plugin (entry point ``pytest11``: ``mosaic_gym``): fixtures, a marker, options.

* ``--mosaic-scenarios DIR`` (repeatable): every scenario file under DIR gets one test item per
  invariant of :data:`mosaic_gym.testing.suite.PROPERTIES` (ids such as
  ``mosaic[immediate_refusal_is_safe:my.yaml]``), and tests that use the ``mosaic_scenario``
  fixture run once per file.
* ``--mosaic-profile fast|thorough``: the Hypothesis profile of those items, also loaded for
  the session's own ``@given`` tests (unset: the items use ``fast`` and the session's loaded
  profile is left alone, so a project's conftest keeps its own).
* ``@pytest.mark.mosaic_scenario(path_or_id, **env_kwargs)``: which scenario the fixtures
  use in one test (a path relative to the test file's folder, or a library id).
* Fixtures: ``mosaic_scenario`` (the scenario path or id in force) and ``mosaic_env`` (a
  fresh ``MosaicEnv`` over it, closed after the test; over the whole library, ``split="all"``,
  when the test names no scenario).

pytest loads entry-point plugins in every session where mosaic-gym is installed, so nothing
heavy happens at import: Hypothesis is imported only when a property item runs or a profile is
asked for, and a session without the options is not changed at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MARKER = "mosaic_scenario"
KEY_FIXTURE = "_mosaic_scenario_key"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mosaic", "mosaic-gym environment safety properties")
    group.addoption("--mosaic-scenarios", action="append", default=[], metavar="DIR",
                    help="Run the mosaic-gym invariant set over the scenario files under DIR "
                         "(repeatable), and parametrise the mosaic_scenario fixture by them.")
    group.addoption("--mosaic-profile", choices=("fast", "thorough"), default=None,
                    help="Hypothesis profile: fast (CI, derandomised) or thorough "
                         "(exploration). Default: fast for the invariant items.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(path_or_id, **env_kwargs): the scenario that the mosaic_env "
                   "and mosaic_scenario fixtures use in this test")
    profile = config.getoption("--mosaic-profile", None)
    if profile:
        from hypothesis import settings

        from mosaic_gym.testing.suite import register_profiles

        register_profiles()
        settings.load_profile(f"mosaic-{profile}")


def _scenario_files(config: pytest.Config) -> list[Path]:
    dirs = config.getoption("--mosaic-scenarios", [])
    if not dirs:
        return []
    from mosaic_gym.scenario.loader import iter_scenario_files

    try:
        return iter_scenario_files(dirs)
    except Exception as exc:  # a missing DIR: say so once, as a usage error
        raise pytest.UsageError(f"--mosaic-scenarios: {exc}") from None


class MosaicPropertyFailure(Exception):
    """An invariant failed on a scenario file (the message is the report)."""


class MosaicPropertyItem(pytest.Item):
    """One invariant over one scenario file."""

    def __init__(self, *, scenario: Path, invariant: str, profile: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.invariant = invariant
        self.profile = profile

    def runtest(self) -> None:
        from mosaic_gym.testing.suite import check_scenario

        (result,) = check_scenario(self.scenario, self.profile, (self.invariant,))
        if not result.passed:
            raise MosaicPropertyFailure(result.detail)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, MosaicPropertyFailure):
            return f"{self.scenario}: {self.invariant}\n{excinfo.value}"
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.scenario, 0, f"mosaic invariant {self.invariant} on {self.scenario.name}"


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselection, so those apply to our items
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    files = _scenario_files(config)
    if not files:
        return
    try:
        from mosaic_gym.testing.suite import PROPERTIES
    except ImportError as exc:
        raise pytest.UsageError("--mosaic-scenarios needs the testing extra "
                                f"(pip install 'mosaic-gym[testing]'): {exc}") from None

    profile = config.getoption("--mosaic-profile", None) or "fast"
    for file in files:
        for invariant in PROPERTIES:
            items.append(MosaicPropertyItem.from_parent(
                session, name=f"mosaic[{invariant}:{file}]", scenario=file,
                invariant=invariant, profile=profile))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if KEY_FIXTURE not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker(MARKER) is not None:
        return
    files = _scenario_files(metafunc.config)
    if files:
        metafunc.parametrize(KEY_FIXTURE, [str(f) for f in files],
                             ids=[f.name for f in files], indirect=True)


def _marked(request: pytest.FixtureRequest) -> tuple[str | None, dict[str, Any]]:
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return None, {}
    if len(marker.args) != 1:
        raise pytest.UsageError(f"@pytest.mark.{MARKER} takes one scenario path or id")
    key = str(marker.args[0])
    if key.endswith((".yaml", ".yml")) and not Path(key).is_absolute():
        key = str(Path(request.node.path).parent / key)
    return key, dict(marker.kwargs)


@pytest.fixture
def _mosaic_scenario_key(request: pytest.FixtureRequest) -> str | None:
    """The marker's scenario, else this run's file of ``--mosaic-scenarios``, else None."""
    key, _ = _marked(request)
    if key is not None:
        return key
    param = getattr(request, "param", None)
    return None if param is None else str(param)


@pytest.fixture
def mosaic_scenario(_mosaic_scenario_key: str | None) -> str:
    """The scenario of this test: the marker's, else one file of ``--mosaic-scenarios``
    (the test is skipped when there is neither)."""
    if _mosaic_scenario_key is None:
        pytest.skip(f"no scenario: mark the test @pytest.mark.{MARKER}(path) or pass "
                    "--mosaic-scenarios DIR")
    return _mosaic_scenario_key


@pytest.fixture
def mosaic_env(request: pytest.FixtureRequest, _mosaic_scenario_key: str | None
               ) -> Iterator[Any]:
    """A fresh ``MosaicEnv`` over the test's scenario (the library, ``split="all"``, when it
    names none); the marker's keyword arguments go to the environment."""
    from mosaic_gym.envs.mosaic_env import MosaicEnv

    _, kwargs = _marked(request)
    kwargs.setdefault("split", "all")
    key = _mosaic_scenario_key
    env = MosaicEnv(scenario=key, **kwargs) if key is not None else MosaicEnv(**kwargs)
    try:
        yield env
    finally:
        env.close()
