"""Issue 9 item 9: every new shell construct and command is bounded (issue 10 item 1).

Each hostile command runs in a bounded child process (:mod:`tests.hardening.bounded`:
wall-time and address-space limits) with a virtual-time budget far beyond the default,
so that the bound which stops it is the construct's own: it must come back as an
ordinary result carrying ``[resource limit: ...]``, never hang, exhaust memory or raise.
"""

from __future__ import annotations

import pytest

from tests.hardening.bounded import run_bounded

#: name -> (command, text the limit message must contain).
HOSTILE = {
    "infinite-while": ("while true; do :; done", "loops ran more than"),
    "infinite-until": ("until false; do :; done", "loops ran more than"),
    "counting-while": ("i=0; while :; do i=$((i+1)); done", "loops ran more than"),
    "nested-loops": ("for a in $(seq 1 1000); do for b in $(seq 1 1000); do :; done; done",
                     "loops ran more than"),
    "huge-for-list": ("for i in $(seq 1 100000000); do :; done",
                      "command substitution output exceeds"),
    "deep-subshells": ("(" * 5000 + "echo x" + ")" * 5000, "nested more than"),
    "deep-groups": ("{ " * 5000 + "echo x;" + " }" * 5000, "nested more than"),
    "deep-loops": ("for i in 1; do " * 500 + "echo x" + "; done" * 500, "nested more than"),
    "deep-arithmetic": ("echo $((" + "(" * 1000 + "1" + ")" * 1000 + "))", "nested more than"),
    "long-arithmetic": ("echo $((" + "1+" * 5000 + "1))", "arithmetic expression of"),
    "recursive-function": ("f() { f; }; f", "functions nested more than"),
    "fork-bomb-function": ("f() { f | f; }; f", "functions nested more than"),
    "exponential-function": ("f() { [ $1 -lt 20 ] && { f $(($1+1)); f $(($1+1)); }; }; f 0",
                             "function calls"),
    "looping-function": ("f() { while :; do :; done; }; f", "loops ran more than"),
    "pattern-removal": ("A=aaaaaaaaaaaaaaaa; " + "A=$A$A; " * 13 + "echo ${A##*a*a*a*b}",
                        "regular expression matching took longer"),
    "pattern-replace": ("A=aaaaaaaaaaaaaaaa; " + "A=$A$A; " * 13 + "echo ${A//*a*a*a*b/x}",
                        "regular expression matching took longer"),
    "sed-endless-branch": ("echo x | sed ':a;ba'", "sed executed more than"),
    "sed-doubling-hold": ("echo x | sed ':a;H;g;ba'", "sed hold space"),
    "sed-doubling-pattern": ("echo x | sed ':a;s/.*/&&/;ta'", "sed pattern space"),
    "gzip-bomb": ("zcat bomb.gz | wc -c", "decompressed data exceeds"),
    "gunzip-bomb": ("gunzip bomb.gz", "decompressed data exceeds"),
    "tar-gzip-bomb": ("tar -xzf bomb.tgz", "decompressed data exceeds"),
    "tar-size-bomb": ("tar -xf big.tar", "extracted data exceeds"),
}

#: Python run in the child before the command: lays down the bombs.
_BOMBS = """
import gzip, io, tarfile
from mosaic_gym.sandbox.base import HOME
from mosaic_gym.sandbox.fake import FakeSandbox
box = FakeSandbox()
zeros = b"\\0" * (16 * 1024 * 1024)
stream = gzip.compress(zeros, 9)
box.write_file(HOME + "/bomb.gz", stream * 8)          # 128 MiB of zeros, 8 members
buffer = io.BytesIO()
with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=9) as archive:
    info = tarfile.TarInfo("zeros")
    info.size = 8 * len(zeros)
    archive.addfile(info, io.BytesIO(zeros * 8))
box.write_file(HOME + "/bomb.tgz", buffer.getvalue())
plain = io.BytesIO()
with tarfile.open(fileobj=plain, mode="w") as archive:
    for number in range(5):                              # 5 x 16 MiB = 80 MiB
        info = tarfile.TarInfo(f"part{number}")
        info.size = len(zeros)
        archive.addfile(info, io.BytesIO(zeros))
box.write_file(HOME + "/big.tar", plain.getvalue())
"""


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_construct_ends_with_a_resource_limit(name: str) -> None:
    command, expected = HOSTILE[name]
    setup = _BOMBS if "bomb" in name or "tar-" in name else (
        "from mosaic_gym.sandbox.fake import FakeSandbox\nbox = FakeSandbox()\n")
    result = run_bounded(setup + f"""
import time
start = time.perf_counter()
result = box.exec({command!r}, timeout=1e9)
report({{"rc": result.exit_code, "err": result.stderr[-400:], "timed_out": result.timed_out,
         "wall": time.perf_counter() - start, "files": len(box.snapshot())}})
""")
    assert "[resource limit:" in result["err"] and expected in result["err"], result
    assert result["rc"] == 1 and not result["timed_out"], result


def test_default_budget_stops_an_endless_loop_as_a_timeout() -> None:
    """With the default virtual-time budget the clock, not the iteration bound, fires."""
    from mosaic_gym.sandbox.fake import FakeSandbox

    result = FakeSandbox().exec("while :; do echo x > /dev/null; done")
    assert result.timed_out and result.exit_code == 124, result


def test_tar_of_many_members_stops_at_the_tree_bound() -> None:
    result = run_bounded("""
import io, tarfile
from mosaic_gym.sandbox.base import HOME
from mosaic_gym.sandbox.fake import FakeSandbox
from mosaic_gym.sandbox.fake.shell.limits import MAX_TREE_ENTRIES
box = FakeSandbox()
buffer = io.BytesIO()
with tarfile.open(fileobj=buffer, mode="w") as archive:
    for number in range(MAX_TREE_ENTRIES + 5000):
        archive.addfile(tarfile.TarInfo(f"f{number}"), io.BytesIO(b""))
box.write_file(HOME + "/many.tar", buffer.getvalue())
result = box.exec("tar -xf many.tar; echo rc=$?", timeout=1e9)
report({"out": result.stdout, "err": result.stderr[-300:], "errors": result.stderr.count("\\n"),
        "files": len(box.snapshot()), "bound": MAX_TREE_ENTRIES})
""")
    assert result["out"] == "rc=1\n" and "No space left on device" in result["err"], result
    assert result["files"] <= result["bound"] and result["errors"] == 1, result
