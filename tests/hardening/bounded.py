"""Run a snippet in a child process with a wall-time and an address-space bound.

A hostile input that hangs or exhausts memory must fail its test, not stall or kill
the test session: on a build without the bounds the child is killed (timeout) or
gets ``MemoryError`` (the RLIMIT_AS cap) and the test reports it. The limits are
liveness guards sized far above what the bounded code needs, not speed claims.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: Generous: the bounded code answers in well under a second on a shared machine.
WALL_S = 90
#: Address space of the child (the interpreter with faker and pyfakefs needs ~400 MB).
MEMORY_BYTES = 2 * 1024**3

_PRELUDE = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))
def report(value):
    sys.stdout.write("\\n@@RESULT@@" + json.dumps(value) + "\\n")
"""


def run_bounded(code: str, *, wall_s: float = WALL_S, memory: int = MEMORY_BYTES) -> Any:
    """Run ``code`` (which calls ``report(value)``); returns the reported value.

    Raises AssertionError when the child times out, dies or reports nothing.
    """
    script = _PRELUDE.format(memory=memory) + textwrap.dedent(code)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=wall_s, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"did not finish within {wall_s} s (unbounded?)") from None
    marker = "@@RESULT@@"
    lines = [line for line in done.stdout.splitlines() if line.startswith(marker)]
    if done.returncode != 0 or not lines:
        raise AssertionError(f"child failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return json.loads(lines[-1][len(marker):])
