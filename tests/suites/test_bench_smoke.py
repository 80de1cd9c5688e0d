"""``benchmarks/bench_suites.py`` still runs (a reduced form): benchmarks rot unseen otherwise.

No time is asserted; the check is that the script plays the pairs both ways and that the
verdicts of the two harnesses agree on every pair it played.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("agentdojo")
ROOT = Path(__file__).resolve().parents[2]


def test_bench_suites_runs_and_verdicts_agree():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_suites.py"),
                           "--pairs", "2", "--repeats", "1", "--suites", "banking,slack"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = re.findall(r"│\s+(banking|slack)\s+│.*│\s+(\d+)/(\d+)\s+│", done.stdout)
    assert {row[0] for row in rows} == {"banking", "slack"}, done.stdout
    assert all(same == total == "2" for _, same, total in rows), done.stdout
