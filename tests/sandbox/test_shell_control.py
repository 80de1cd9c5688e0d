"""Issue 9 item 9: the fake shell's compound commands, arithmetic and ``read``.

Each case is (command, exact stdout); every expected output is what busybox ``sh`` (the
docker image's shell) prints for the same command.
"""

from __future__ import annotations

import pytest

from mosaic_gym.sandbox.fake import FakeSandbox

CASES = [
    # for
    ("for x in a b c; do echo $x; done", "a\nb\nc\n"),
    ("for x in; do echo never; done; echo after", "after\n"),
    ("for x in $(echo 1 2) '3 4'; do echo \"[$x]\"; done", "[1]\n[2]\n[3 4]\n"),
    ("touch a.txt b.txt; for f in *.txt; do echo $f; done", "a.txt\nb.txt\n"),
    ("for x in a b\ndo\n  echo $x\ndone", "a\nb\n"),
    ("for x in a b; do echo $x; done > out; cat out", "a\nb\n"),
    ("for x in 1 2 3; do echo $x; done | wc -l", "3\n"),
    # while / until, break and continue
    ("i=0; while [ $i -lt 3 ]; do echo $i; i=$((i+1)); done", "0\n1\n2\n"),
    ("i=0; until [ $i -ge 2 ]; do i=$((i+1)); done; echo $i", "2\n"),
    ("for i in 1 2 3 4; do [ $i = 2 ] && continue; [ $i = 4 ] && break; echo $i; done",
     "1\n3\n"),
    ("for i in 1 2; do for j in a b; do echo $i$j; break 2; done; done", "1a\n"),
    ("for i in 1 2; do for j in a b; do continue 2; echo no; done; echo no; done; echo ok",
     "ok\n"),
    ("while true; do echo once; break; done", "once\n"),
    ("break; echo outside", "outside\n"),
    ("for x in a; do false; done; echo $?", "1\n"),
    # read
    ("printf '1 2\\n3 4\\n' > f; while read a b; do echo \"$b-$a\"; done < f", "2-1\n4-3\n"),
    ("printf 'x\\ny' | while read l; do echo \"<$l>\"; done", "<x>\n"),
    ("printf 'x\\ny' | while read l || [ -n \"$l\" ]; do echo \"<$l>\"; done", "<x>\n<y>\n"),
    ("printf 'a b c\\n' | { read x rest; echo \"$rest|$x\"; }", "b c|a\n"),
    ("printf 'a\\\\tb\\n' | { read -r x; echo \"$x\"; }", "a\\tb\n"),
    ("printf 'k=v\\n' | { IFS== read k v; echo $k $v; }", "k v\n"),
    ("echo x | read v; echo \"[$v]\"", "[]\n"),
    ("read v < /dev/null; echo $?", "1\n"),
    ("while read l; do echo $l; done <<EOF\none\ntwo\nEOF", "one\ntwo\n"),
    # if / case
    ("if false; then echo a; elif true; then echo b; else echo c; fi", "b\n"),
    ("if [ -d /tmp ]; then echo dir; fi", "dir\n"),
    ("if false; then :; fi; echo $?", "0\n"),
    ("case abc in a*) echo yes;; *) echo no;; esac", "yes\n"),
    ("case x in \"*\") echo lit;; *) echo glob;; esac", "glob\n"),
    ("case b in a|b) echo ab;; esac", "ab\n"),
    ("x=foo.tar.gz; case $x in *.gz) echo gz ;; (*) echo other ;; esac", "gz\n"),
    ("case z in a) echo a;; esac; echo $?", "0\n"),
    # subshells and groups
    ("(cd /tmp && pwd); pwd", "/tmp\n/home/user\n"),
    ("x=1; (x=2; echo $x); echo $x", "2\n1\n"),
    ("(exit 4); echo $?", "4\n"),
    ("{ echo a; echo b; } | wc -l", "2\n"),
    ("{ x=5; }; echo $x", "5\n"),
    ("{ echo out; echo err >&2; } 2>/dev/null", "out\n"),
    ("( ( ( echo deep ) ) )", "deep\n"),
    ("cd /tmp | true; pwd", "/home/user\n"),
    # arithmetic
    ("echo $((1 + 2 * 3)) $(( (1+2)*3 )) $((7 / 2)) $((-7 / 2)) $((-7 % 3))", "7 9 3 -3 -1\n"),
    ("echo $((2 ** 10)) $((1 << 4)) $((0x10 + 010)) $((5 & 3 | 8)) $((~0))", "1024 16 24 9 -1\n"),
    ("echo $((x = 5)) $x $((x += 2)) $((1 < 2 ? 10 : 20)) $((!0))", "5 5 7 10 1\n"),
    ("i=3; echo $((i * i)) \"$((i+1))\" $(($i - 1))", "9 4 2\n"),
    ("echo $((9223372036854775807 + 1))", "-9223372036854775808\n"),
    ("echo ab > f; echo $(( $(wc -c < f) * $(echo 2) ))", "6\n"),
    # functions and positional parameters
    ('f() { echo "hi $1 $#"; }; f a b', "hi a 2\n"),
    ("g() { local x=2; echo $x; return 3; }; x=1; g; echo $? $x", "2\n3 1\n"),
    ('f() { for a; do echo "<$a>"; done; }; f "a b" c', "<a b>\n<c>\n"),
    ('f() { printf "[%s]" "$@"; echo; }; f "a b" c; f', "[a b][c]\n[]\n"),
    ("f() { shift; echo $*; }; f 1 2 3", "2 3\n"),
    ("set -- x y; echo $1 $#", "x 2\n"),
    ("f()\n{\n  echo multi\n}\nf", "multi\n"),
    ("f() ( cd /tmp; pwd ); f; pwd", "/tmp\n/home/user\n"),
    ("f() { echo $1; } > o; f z; cat o", "z\n"),
    ("count() { echo $#; }; count $(echo a b c)", "3\n"),
    ("(g() { echo in; }; g); g 2>/dev/null || echo gone", "in\ngone\n"),
    ("f() { (return 3); echo $?; }; f", "3\n"),
    ("for i in 1 2; do echo $i; break | cat; (break); done", "1\n2\n"),
    ("f() { for i in 1 2; do return 5; done; echo no; }; f; echo $?", "5\n"),
    # pattern removal and replacement
    ("x=a/b/c.tar.gz; echo ${x%.*} ${x%%.*} ${x#*/} ${x##*/}",
     "a/b/c.tar a/b/c b/c.tar.gz c.tar.gz\n"),
    ("x=hello; echo ${x/l/L} ${x//l/L} ${x/z/Z}", "heLlo heLLo hello\n"),
    ('for f in a.txt b.txt; do echo "${f%.txt}.md"; done', "a.md\nb.md\n"),
    ("x=abc; echo ${x%[bc]} ${x#?} ${x%}", "ab bc abc\n"),
    ('x="a b"; echo ${x// /_}', "a_b\n"),
    ("f() { echo ${1:-def} ${2:-def}; }; f one", "one def\n"),
    # set -e applies inside compound commands
    ("set -e; for i in 1; do false; echo no; done; echo no2", ""),
    ("set -e; if false; then :; fi; while false; do :; done; echo yes", "yes\n"),
]


@pytest.mark.parametrize(("command", "expected"), CASES, ids=[c[0][:50] for c in CASES])
def test_construct(command: str, expected: str) -> None:
    result = FakeSandbox().exec(command)
    assert result.stdout == expected, result


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("for 1x in a; do :; done", "Bad for loop variable"),
        ("while true; do", "unexpected end of file"),
        ("if true; then fi", "syntax error"),
        ("{ echo a", "unexpected end of file"),
        ("echo $((1 +))", "arithmetic syntax error"),
        ("echo $((1 / 0))", "divide by zero"),
        ("echo $((2 ** -1))", "exponent less than 0"),
        ("break x", "Illegal number"),
        ("read 1bad < /dev/null", "not a valid identifier"),
        ("local x", "not in a function"),
        ("f() { shift 3; }; f a", "can't shift that many"),
        ("f() { f; }; f", "functions nested more than"),
        ("f() echo x", "syntax error"),
    ],
)
def test_bad_usage_is_a_shell_error(command: str, message: str) -> None:
    result = FakeSandbox().exec(command)
    assert result.exit_code != 0 and message in result.stderr, result


def test_loop_changes_are_seen_by_the_sandbox_diff() -> None:
    box = FakeSandbox()
    before = box.snapshot()
    box.exec("for n in 1 2 3; do echo $n > f$n.txt; done; (cd /tmp && touch t)")
    paths = {change.path for change in box.diff(before)}
    assert paths == {"/home/user/f1.txt", "/home/user/f2.txt", "/home/user/f3.txt", "/tmp/t"}


def test_supported_commands_lists_the_new_commands_and_builtins() -> None:
    from mosaic_gym.sandbox.fake.shell import supported_commands

    names = set(supported_commands())
    new = {"sed", "tar", "gzip", "gunzip", "zcat", "stat", "read", "break", "continue",
           "return", "shift", "local"}
    assert new <= names, new - names
    assert FakeSandbox().exec("type read; command -v sed").stdout == (
        "read is a shell builtin\n/usr/bin/sed\n")
