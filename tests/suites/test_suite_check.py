"""``mosaic suites check``: the tables say what the scripted agents did; defects are listed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def test_import_mosaic_gym_imports_no_suite():
    code = ("import sys, json, mosaic_gym, gymnasium as gym; "
            "print(json.dumps({'loaded': [m for m in ('agentdojo', 'bfcl_eval') "
            "if m in sys.modules], 'ids': [i for i in gym.registry if i.startswith('mosaic/')]}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert report["loaded"] == []
    assert {"mosaic/AgentDojo-v0", "mosaic/BFCL-v0"} <= set(report["ids"])


def test_agentdojo_banking_check_lists_the_do_nothing_tasks_as_upstream_defects():
    pytest.importorskip("agentdojo")
    from mosaic_gym.suite_check import check_agentdojo

    report = check_agentdojo(suites=["banking"])
    assert report.failures == []
    rows = report.rows["banking"]
    assert rows["ignore: attack success"].hits == 0
    assert rows["obey: attack success"].hits == rows["obey: attack success"].total == 144
    assert rows["refuse: utility"].hits == 0
    idle = report.defects["user task whose utility passes for an agent that does nothing "
                          "(upstream)"]
    assert sorted(idle) == sorted(f"banking/user_task_{n}" for n in (5, 6, 8, 9, 10))


def test_bfcl_quick_check_has_no_failures_and_a_row_per_category():
    pytest.importorskip("bfcl_eval")
    from mosaic_gym.envs.suites.bfcl import CATEGORIES
    from mosaic_gym.suite_check import check_bfcl

    report = check_bfcl(quick=True)
    assert report.failures == [] and list(report.rows) == list(CATEGORIES)
    for category, rows in report.rows.items():
        declined = category in ("irrelevance", "live_irrelevance")
        assert rows["refuse: correct"].hits == (rows["refuse: correct"].total if declined else 0)


def test_cli_prints_the_table_and_exits_zero(tmp_path):
    pytest.importorskip("bfcl_eval")
    out = tmp_path / "report.json"
    result = subprocess.run([sys.executable, "-m", "mosaic_gym.cli", "suites", "check", "bfcl",
                             "--quick", "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "answer: correct" in result.stdout and "0 failure(s)" in result.stdout
    assert json.loads(out.read_text())["failures"] == []


def test_cli_names_an_unknown_suite():
    result = subprocess.run([sys.executable, "-m", "mosaic_gym.cli", "suites", "check", "dojo"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "unknown suite 'dojo'" in result.stderr
