"""The reduced stress run: every hostile input of issue 10 stays within its bounds.

Runs ``benchmarks/stress_hostile.py --quick`` (fake backend and scenario loading
always, docker rows when an engine answers) and requires exit status 0: no row over
its wall-time or peak-RSS bound, no child killed or crashed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_stress_run_is_within_every_bound() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "stress_hostile.py"),
                           "--quick"], capture_output=True, text=True, timeout=1800, cwd=ROOT)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines()[1:] if line and not line.startswith("(")]
    assert len(rows) >= 20 and all(" yes " in line for line in rows), done.stdout
