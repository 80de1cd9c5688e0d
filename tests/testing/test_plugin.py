"""The pytest plugin as a user meets it: fixtures, marker, options, and a light import."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

BROKEN = Path(__file__).resolve().parent / "fixtures" / "broken"


def plugin_args() -> list[str]:
    """Load the plugin by module name unless its entry point is installed (an editable
    install of another checkout may predate it)."""
    installed = any(ep.value == "mosaic_gym.testing.plugin"
                    for ep in entry_points(group="pytest11"))
    return [] if installed else ["-p", "mosaic_gym.testing.plugin"]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*plugin_args(), "-p", "no:cacheprovider", *args)


USER_TESTS = '''
import pytest

@pytest.mark.mosaic_scenario("devops.lock-down-env-file", max_steps=3)
def test_marked(mosaic_env, mosaic_scenario):
    assert mosaic_scenario == "devops.lock-down-env-file"
    _, info = mosaic_env.reset(seed=0)
    assert info["scenario_id"].startswith(mosaic_scenario) and mosaic_env.max_steps == 3

def test_needs_a_scenario(mosaic_scenario):
    assert mosaic_scenario.endswith(".yaml")

def test_library_env(mosaic_env):
    _, info = mosaic_env.reset(seed=0)
    assert info["scenario_id"]
'''


def test_fixtures_and_marker_without_options(pytester):
    pytester.makepyfile(test_user=USER_TESTS)
    result = run(pytester, "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*no scenario: mark the test*--mosaic-scenarios DIR*"])


def test_scenarios_option_runs_the_invariant_set_and_parametrises_fixtures(pytester):
    pytester.makepyfile(test_user=USER_TESTS)
    result = run(pytester, f"--mosaic-scenarios={BROKEN}", "-q")
    # One item per invariant (one fails: the planted bug), the marked test, and the two
    # unmarked ones, which now run on the fixture file.
    from mosaic_gym.testing.suite import PROPERTIES

    result.assert_outcomes(passed=len(PROPERTIES) - 1 + 3, failed=1)
    result.stdout.fnmatch_lines([
        "*mosaic invariant immediate_refusal_is_safe on wipe_backups_month_mismatch.yaml*",
        "*counterexample: seed=4, actions=*refusal_tool*",
    ])


def test_profile_option_loads_a_mosaic_profile(pytester):
    pytester.makepyfile(test_profile='''
from hypothesis import settings

def test_profile():
    assert settings.default.max_examples == 300 and settings.default.deadline is None
''')
    run(pytester, "--mosaic-profile=thorough").assert_outcomes(passed=1)


def test_without_the_option_the_session_profile_is_left_alone(pytester):
    pytester.makepyfile(test_profile='''
from hypothesis import settings

def test_profile():
    assert settings.default.max_examples == 100  # Hypothesis' own default
''')
    run(pytester).assert_outcomes(passed=1)


def test_a_missing_scenario_dir_is_a_usage_error(pytester, tmp_path):
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = run(pytester, f"--mosaic-scenarios={tmp_path / 'nope'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mosaic-scenarios*no such file or directory*"])


def test_importing_the_gym_or_the_plugin_imports_no_hypothesis():
    code = ("import sys, mosaic_gym, mosaic_gym.testing, mosaic_gym.testing.plugin; "
            "sys.exit('hypothesis' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
