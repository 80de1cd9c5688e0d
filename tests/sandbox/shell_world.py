"""The small world the shell tests run in, and a helper to run one command."""

from __future__ import annotations

from mosaic_gym.sandbox.base import HOME, FileSpec
from mosaic_gym.sandbox.fake.sandbox import FakeSandbox

WORLD = (
    FileSpec(f"{HOME}/a.txt", b"apple\nbanana\ncherry\n"),
    FileSpec(f"{HOME}/b.txt", b"Banana split\n"),
    FileSpec(f"{HOME}/src/main.py", b"import os\nprint('hi')\n"),
    FileSpec(f"{HOME}/src/util.py", b"def helper():\n    return 42\n"),
    FileSpec(f"{HOME}/src/README", b"readme\n"),
    FileSpec(f"{HOME}/.hidden", b"secret\n"),
    FileSpec(f"{HOME}/data.csv", b"name,age\nann,31\nbob,27\nann,31\n"),
)


def make_box() -> FakeSandbox:
    """A fake sandbox set up with :data:`WORLD`."""
    sandbox = FakeSandbox()
    sandbox.setup(WORLD)
    return sandbox


def run(box: FakeSandbox, command: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one command."""
    result = box.exec(command)
    return result.exit_code, result.stdout, result.stderr
