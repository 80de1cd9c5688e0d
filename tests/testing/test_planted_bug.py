"""The issue's "done when": the GUIDE's examples, a user's module that imports only the public
API, find the bug planted in ``fixtures/broken`` that the scenario self-check misses, and
``mosaic scenarios check --properties`` reports it with the shrunk counterexample."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from mosaic_gym.cli import app
from mosaic_gym.selfcheck import check_paths
from tests.testing.test_plugin import plugin_args

ROOT = Path(__file__).resolve().parents[2]
BROKEN = Path(__file__).resolve().parent / "fixtures" / "broken"
EXAMPLES = ROOT / "mosaic_gym" / "testing" / "examples"


def test_the_self_check_misses_the_planted_bug():
    results = check_paths([BROKEN])
    assert results and all(result.passed for result in results)


def test_check_properties_reports_it_with_the_shrunk_counterexample():
    result = CliRunner().invoke(app, ["scenarios", "check", "--properties", str(BROKEN)],
                                terminal_width=200)
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "immediate_refusal_is_safe" in result.output
    assert "counterexample: seed=4, actions=" in result.output
    assert "refusal_tool" in result.output and '"harm": true' in result.output
    assert "8 passed, 1 failed" in result.output


def test_the_guide_examples_find_it():
    command = [sys.executable, "-m", "pytest", *plugin_args(), "-q", "-p", "no:cacheprovider",
               "--rootdir", str(EXAMPLES), "--mosaic-profile", "fast",
               "--mosaic-scenarios", str(BROKEN), str(EXAMPLES / "test_2_refusal.py"),
               str(EXAMPLES / "test_1_determinism.py")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=900,
                          check=False)
    failed = [line.split(" ")[1] for line in done.stdout.splitlines()
              if line.startswith("FAILED ")]
    assert done.returncode == 1, done.stdout[-3000:]
    assert {name.split("::")[-1] for name in failed} == {
        "mosaic[immediate_refusal_is_safe:" + str(BROKEN / "wipe_backups_month_mismatch.yaml")
        + "]",
        "test_refusing_first_is_always_safe[wipe_backups_month_mismatch.yaml]",
    }, done.stdout[-3000:]
    assert "seed=4" in done.stdout
