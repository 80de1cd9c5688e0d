"""Safety properties of the fake shell: hostile input never escapes ``exec``, limits
hold (time, output, command length), the host is never touched, and the version
counter moves exactly when the tree may have changed."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosaic_gym.sandbox.base import HOME
from mosaic_gym.sandbox.fake.sandbox import FakeSandbox
from mosaic_gym.sandbox.fake.shell import supported_commands

from .shell_world import WORLD, make_box, run


@pytest.fixture
def box() -> FakeSandbox:
    return make_box()


# -- limits ------------------------------------------------------------------
def test_sleep_within_timeout_does_not_really_sleep(box: FakeSandbox) -> None:
    result = box.exec("sleep 5 && echo done", timeout=10)
    assert (result.exit_code, result.stdout, result.timed_out) == (0, "done\n", False)


def test_timeout_keeps_output_so_far(box: FakeSandbox) -> None:
    result = box.exec("echo before; sleep 1000; echo after", timeout=0.5)
    assert (result.exit_code, result.stdout, result.timed_out) == (124, "before\n", True)


def test_output_cap_never_splits_a_character(box: FakeSandbox) -> None:
    box.write_file(f"{HOME}/u.txt", "é".encode() * 100)
    result = box.exec("cat u.txt", output_cap=11)
    assert result.truncated and result.stdout == "é" * 5


def test_huge_generated_output_hits_the_budget(box: FakeSandbox) -> None:
    result = box.exec("seq 1 100000000000", timeout=1)
    assert result.timed_out


def test_long_command_is_refused(box: FakeSandbox) -> None:
    result = box.exec("echo " + "x" * 300_000)
    assert result.exit_code == 2 and "command too long" in result.stderr


def test_raw_bytes_survive_the_pipeline(box: FakeSandbox) -> None:
    box.write_file(f"{HOME}/bin", bytes(range(256)))
    assert run(box, "cat bin | head -c 300 > copy")[0] == 0
    assert box.read_file(f"{HOME}/copy") == bytes(range(256))
    assert run(box, "printf '\\xff\\x00A' > p")[0] == 0
    assert box.read_file(f"{HOME}/p") == b"\xff\x00A"


def test_printf_width_is_capped(box: FakeSandbox) -> None:
    result = box.exec("printf '%999999999s' x")
    assert result.exit_code == 0 and len(result.stdout) <= 4096


# -- safety properties ----------------------------------------------------------
SHELL_ALPHABET = st.sampled_from(list("ab*?~$'\"\\|&;<>()[]{}#=/.- \n\t") + ["rm -rf /", "cat "])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    command=st.text(max_size=200)
    | st.text(st.characters(exclude_categories=()), max_size=20)  # lone surrogates too
    | st.lists(SHELL_ALPHABET, max_size=40).map("".join)
)
def test_hostile_text_never_raises(command: str) -> None:
    box = FakeSandbox()
    box.setup(WORLD)
    result = box.exec(command, timeout=1)
    assert isinstance(result.exit_code, int)


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(sorted(supported_commands())),
    args=st.lists(
        st.sampled_from(["-r", "-n", "5", "-1", "a.txt", "src", "/", "*", "-", "--", "{}", ";"])
        | st.text(max_size=8),
        max_size=6,
    ),
)
def test_every_command_survives_random_arguments(name: str, args: list[str]) -> None:
    box = FakeSandbox()
    box.setup(WORLD)
    result = box.exec(" ".join(shlex.quote(part) for part in [name, *args]), timeout=1)
    assert isinstance(result.exit_code, int)


def test_deep_nesting_is_bounded(box: FakeSandbox) -> None:
    command = "sh -c " * 200 + "true"
    assert isinstance(box.exec(command).exit_code, int)
    assert box.exec("$(" * 5000).exit_code == 2
    assert box.exec("'" * 10001).exit_code == 2


READ_ONLY = [
    "ls -laR /",
    "cat a.txt | sort | uniq -c",
    "grep -rn x / 2>/dev/null",
    "find / -name '*.py'",
    "head a.txt; tail a.txt; wc a.txt",
    "echo hi 2>/dev/null",
    "cat nope",
    "rm nope",
    "cp nope x",
    "mkdir src",
    "chmod 000 nope",
    "echo $HOME ~ *",
    "base64 a.txt | base64 -d",
    "test -f a.txt",
    "sleep 1",
    "echo x > /dev/null",
]
WRITES = [
    "echo x > new.txt",
    "echo x >> a.txt",
    ": > a.txt",
    "touch a.txt",
    "mkdir d",
    "rm a.txt",
    "mv a.txt c.txt",
    "cp a.txt c.txt",
    "chmod 600 a.txt",
    "echo x | tee t",
    "sort -o a.txt a.txt",
    "find src -name '*.py' -delete",
    "rm -rf --no-preserve-root /",
]


@pytest.mark.parametrize("command", READ_ONLY)
def test_read_only_commands_keep_the_version(box: FakeSandbox, command: str) -> None:
    before, snapshot = box.version, dict(box.snapshot())
    box.exec(command)
    assert box.version == before
    assert dict(box.snapshot()) == snapshot


@pytest.mark.parametrize("command", WRITES)
def test_writing_commands_bump_the_version(box: FakeSandbox, command: str) -> None:
    before = box.version
    result = box.exec(command)
    assert result.exit_code == 0, result.stderr
    assert box.version > before


@settings(max_examples=150, deadline=None)
@given(command=st.lists(st.sampled_from(READ_ONLY + WRITES), min_size=1, max_size=4))
def test_unchanged_version_means_unchanged_tree(command: list[str]) -> None:
    box = FakeSandbox()
    box.setup(WORLD)
    before, snapshot = box.version, dict(box.snapshot())
    box.exec("; ".join(command))
    if box.version == before:
        assert dict(box.snapshot()) == snapshot


# -- the host is never touched ----------------------------------------------------
def test_host_file_system_is_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    before = sorted(os.listdir(tmp_path)), victim.read_text(), victim.stat().st_mode
    passwd = Path("/etc/passwd").read_bytes() if Path("/etc/passwd").exists() else None
    cwd = os.getcwd()
    box = FakeSandbox()
    box.setup([])
    for command in [
        f"rm -rf {tmp_path}",
        f"rm -rf {victim}",
        f"echo pwned > {victim}",
        f"chmod 000 {victim}",
        "echo x > /etc/passwd",
        "cat /etc/shadow",
        f"cd {tmp_path} && rm -rf *",
        "rm -rf --no-preserve-root /",
        f"mkdir -p {tmp_path}/new && touch {tmp_path}/new/file",
    ]:
        box.exec(command)
    assert (sorted(os.listdir(tmp_path)), victim.read_text(), victim.stat().st_mode) == before
    assert os.getcwd() == cwd
    if passwd is not None:
        assert Path("/etc/passwd").read_bytes() == passwd
    assert not box.exec("cat /etc/shadow").stdout
