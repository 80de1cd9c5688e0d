"""Issue 9 item 9 (first part): the fake shell runs ``$(...)`` and backquotes like sh,
within the same bounds as the rest of the shell (issue 10 item 1)."""

from __future__ import annotations

import pytest

from mosaic_gym.sandbox.fake import FakeSandbox

CASES = [
    ("echo $(echo hi there)", "hi there\n"),
    ('x=$(printf "a\\nb\\n\\n"); echo "[$x]"', "[a\nb]\n"),
    ('echo "$(echo "a  b")"', "a  b\n"),
    ("echo $(echo 'a  b')", "a b\n"),
    ("echo `echo back`", "back\n"),
    ('echo "`echo q`"', "q\n"),
    ("echo $(echo $(echo nested))", "nested\n"),
    ('echo $(echo ")")', ")\n"),
    ("cd /tmp; echo $(cd /; pwd) $(pwd)", "/ /tmp\n"),
    ("echo $(echo a)$(echo b)", "ab\n"),
    ("x=$(false); echo $?", "1\n"),
    ("x=1; y=$(x=2; echo $x); echo $x $y", "1 2\n"),
    ("echo hi > f; wc -c < f; echo $(cat f | tr h H)", "3\nHi\n"),
    ("for_each=$(ls -d /tmp); echo $for_each", "/tmp\n"),
]


@pytest.mark.parametrize(("command", "expected"), CASES)
def test_substitution_output(command: str, expected: str) -> None:
    result = FakeSandbox().exec(command)
    assert (result.exit_code, result.stdout) == (0, expected), result


def test_substitution_stderr_reaches_the_command() -> None:
    result = FakeSandbox().exec("echo $(ls /nope) done")
    assert result.stdout == "done\n" and "/nope" in result.stderr


def test_nesting_is_bounded() -> None:
    command = "echo " + "$(echo " * 12 + "x" + ")" * 12
    result = FakeSandbox().exec(command)
    assert result.exit_code == 1 and "[resource limit: command substitution nested" in (
        result.stderr), result


def test_output_is_bounded() -> None:
    grow = "printf '%4096s' x > a; cat a a a a a a a a > b; cat b b b b b b b b > c; "
    command = grow + "cat c c c c c c c c c c c c c c c c c c c c > d; x=$(cat d d d d d d d d)"
    result = FakeSandbox().exec(command)
    assert result.exit_code == 1 and "[resource limit:" in result.stderr, result


def test_substitution_costs_virtual_time() -> None:
    result = FakeSandbox().exec("x=$(sleep 5); echo late", timeout=2)
    assert result.timed_out and result.stdout == "", result


def test_unterminated_is_a_clear_error_and_arithmetic_is_not_a_substitution() -> None:
    box = FakeSandbox()
    assert "Unterminated command substitution" in box.exec("echo $(echo").stderr
    assert box.exec("echo $((1+1)) $( (echo sub) )").stdout == "2 sub\n"
