"""The fake shell, command by command: syntax, each command's output and error
wording, scripts, curl/wget egress, and the parser. Safety properties live in
``test_shell_safety.py``."""

from __future__ import annotations

import base64
import hashlib

import pytest

from mosaic_gym.sandbox.base import HOME, HttpRequest, HttpResponse
from mosaic_gym.sandbox.fake.sandbox import FakeSandbox
from mosaic_gym.sandbox.fake.shell import supported_commands
from mosaic_gym.sandbox.fake.shell.syntax import ShellSyntaxError, ShellUnsupported, parse

from .shell_world import make_box, run


@pytest.fixture
def box() -> FakeSandbox:
    return make_box()


# (command, exit code, exact stdout) for commands whose output is fully determined.
CASES = [
    # syntax: lists, pipes, quoting, expansion, globs, redirections
    ("echo a; echo b", 0, "a\nb\n"),
    ("false && echo no; true && echo yes", 0, "yes\n"),
    ("false || echo rescued", 0, "rescued\n"),
    ("! false && echo negated", 0, "negated\n"),
    ("cat a.txt | grep an | wc -l", 0, "1\n"),
    ("echo 'single $HOME' \"double $HOME\" \\$HOME", 0, f"single $HOME double {HOME} $HOME\n"),
    ("echo ~ ~/x", 0, f"{HOME} {HOME}/x\n"),
    ("X='a  b'; echo $X; echo \"$X\"", 0, "a b\na  b\n"),
    ("echo ${UNSET:-fallback} ${#HOME}", 0, f"fallback {len(HOME)}\n"),
    ("false; echo $?", 0, "1\n"),
    ("echo *.txt", 0, "a.txt b.txt\n"),
    ("echo src/*.py", 0, "src/main.py src/util.py\n"),
    ("echo '*.txt' \"*.txt\"", 0, "*.txt *.txt\n"),
    ("echo nomatch*", 0, "nomatch*\n"),
    ("echo ?.txt", 0, "a.txt b.txt\n"),
    ("echo x > o.txt; echo y >> o.txt; cat o.txt", 0, "x\ny\n"),
    ("cat < a.txt | head -n 1", 0, "apple\n"),
    ("cat missing 2>/dev/null; echo $?", 0, "1\n"),
    ("cat missing 2>&1", 1, "cat: missing: No such file or directory\n"),
    ("echo err >&2 2>/dev/null", 0, ""),
    ("cat <<EOF\nhi $USER\nEOF", 0, "hi user\n"),
    ("cat <<'EOF'\nhi $USER\nEOF", 0, "hi $USER\n"),
    ("A=1 B=2; echo $A$B", 0, "12\n"),
    ("export GREETING=hey; sh -c 'echo $GREETING'", 0, "hey\n"),
    ("bash -c 'exit 4'; echo $?", 0, "4\n"),
    ("echo ls | sh", 0, "a.txt\nb.txt\ndata.csv\nsrc\n"),
    ("eval 'echo evaluated'", 0, "evaluated\n"),
    ("set -e; false; echo unreachable", 1, ""),
    ("echo a # comment", 0, "a\n"),
    ("echo one \\\n two", 0, "one two\n"),
    # files
    ("ls", 0, "a.txt\nb.txt\ndata.csv\nsrc\n"),
    ("ls -a src", 0, ".\n..\nREADME\nmain.py\nutil.py\n"),
    ("ls -A", 0, ".hidden\na.txt\nb.txt\ndata.csv\nsrc\n"),
    ("ls -R src", 0, "src:\nREADME\nmain.py\nutil.py\n"),
    ("cat -n b.txt", 0, "     1\tBanana split\n"),
    ("head -n 2 a.txt", 0, "apple\nbanana\n"),
    ("head -2 a.txt", 0, "apple\nbanana\n"),
    ("head -c 3 a.txt", 0, "app"),
    ("tail -n 1 a.txt", 0, "cherry\n"),
    ("tail -n +2 a.txt", 0, "banana\ncherry\n"),
    ("pwd; cd src; pwd; cd ..; pwd", 0, f"{HOME}\n{HOME}/src\n{HOME}\n"),
    ("basename /a/b/c.txt .txt; dirname /a/b/c.txt", 0, "c\n/a/b\n"),
    ("realpath src/../a.txt", 0, f"{HOME}/a.txt\n"),
    ("test -f a.txt && [ -d src ] && [ ! -e nope ] && echo ok", 0, "ok\n"),
    ("[ 3 -gt 2 ] && [ abc = abc ] && echo ok", 0, "ok\n"),
    # find
    ("find src -name '*.py'", 0, "src/main.py\nsrc/util.py\n"),
    ("find . -maxdepth 1 -type d", 0, ".\n./src\n"),
    ("find src -type f ! -name '*.py'", 0, "src/README\n"),
    ("find src -name '*.py' -exec wc -l {} \\;", 0, "2 src/main.py\n2 src/util.py\n"),
    # grep
    ("grep an a.txt", 0, "banana\n"),
    ("grep -i banana a.txt b.txt", 0, "a.txt:banana\nb.txt:Banana split\n"),
    ("grep -n rr a.txt", 0, "3:cherry\n"),
    ("grep -v an a.txt", 0, "apple\ncherry\n"),
    ("grep -c a a.txt", 0, "2\n"),
    ("grep -l import -r src", 0, "src/main.py\n"),
    ("grep -rn 42 src", 0, "src/util.py:2:    return 42\n"),
    ("grep -E 'ap+le|cherry' a.txt", 0, "apple\ncherry\n"),
    ("grep 'b\\(an\\)\\{2\\}' a.txt", 0, "banana\n"),
    ("grep -o 'an' a.txt", 0, "an\nan\n"),
    ("grep -w ann data.csv", 0, "ann,31\nann,31\n"),
    ("grep '^[[:upper:]]' b.txt", 0, "Banana split\n"),
    ("grep zzz a.txt", 1, ""),
    ("grep -q apple a.txt && echo found", 0, "found\n"),
    # text
    ("wc -l a.txt", 0, "3 a.txt\n"),
    ("wc -w < b.txt", 0, "2\n"),
    ("wc -c a.txt b.txt", 0, "20 a.txt\n13 b.txt\n33 total\n"),
    ("echo -n no-newline", 0, "no-newline"),
    ("echo -e 'tab\\there'", 0, "tab\there\n"),
    ("printf '%s=%d\\n' a 1 b 2", 0, "a=1\nb=2\n"),
    ("printf '%5.1f|%-3s|%x\\n' 3.14159 ab 255", 0, "  3.1|ab |ff\n"),
    ("sort -r a.txt", 0, "cherry\nbanana\napple\n"),
    ("printf '10\\n9\\n100\\n' | sort -n", 0, "9\n10\n100\n"),
    ("sort -t, -k2 -n data.csv | head -n 2", 0, "name,age\nbob,27\n"),
    ("sort data.csv | uniq -c", 0, "      2 ann,31\n      1 bob,27\n      1 name,age\n"),
    ("cut -d, -f1 data.csv | sort -u", 0, "ann\nbob\nname\n"),
    ("echo hello | cut -c 2-4", 0, "ell\n"),
    ("echo hello | tr a-z A-Z", 0, "HELLO\n"),
    ("echo 'a1b2' | tr -d '[:digit:]'", 0, "ab\n"),
    ("echo aaabbb | tr -s ab", 0, "ab\n"),
    ("echo secret | base64", 0, "c2VjcmV0Cg==\n"),
    ("echo c2VjcmV0Cg== | base64 -d", 0, "secret\n"),
    ("seq 3", 0, "1\n2\n3\n"),
    ("seq 2 2 6 | tac", 0, "6\n4\n2\n"),
    ("echo abc | rev", 0, "cba\n"),
    ("whoami; id -u; hostname", 0, "user\n1000\nsandbox\n"),
    ("date +%Y-%m-%d", 0, "2024-01-01\n"),
    ("env | grep ^HOME=", 0, f"HOME={HOME}\n"),
    ("echo a b c | xargs -n 1 echo item", 0, "item a\nitem b\nitem c\n"),
    ("which ls; which nope; echo $?", 0, "/usr/bin/ls\n1\n"),
    ("timeout 1 sleep 5; echo $?", 0, "124\n"),
]


@pytest.mark.parametrize(("command", "status", "stdout"), CASES, ids=[c[0] for c in CASES])
def test_command(box: FakeSandbox, command: str, status: int, stdout: str) -> None:
    code, out, err = run(box, command)
    assert (code, out) == (status, stdout), err


def test_checksums(box: FakeSandbox) -> None:
    data = b"apple\nbanana\ncherry\n"
    assert run(box, "sha256sum a.txt")[1] == f"{hashlib.sha256(data).hexdigest()}  a.txt\n"
    assert run(box, "md5sum < a.txt")[1] == f"{hashlib.md5(data).hexdigest()}  -\n"


def test_ls_long_format(box: FakeSandbox) -> None:
    out = run(box, "chmod 750 src; ls -l")[1].splitlines()
    assert out[0].startswith("total ")
    assert out[1] == "-rw-r--r-- 1 user user 20 Jan  1 00:00 a.txt"
    assert out[-1].startswith("drwxr-x--- 1 user user") and out[-1].endswith(" src")


@pytest.mark.parametrize(
    ("command", "path", "content"),
    [
        ("mkdir -p x/y && touch x/y/z", f"{HOME}/x/y/z", b""),
        ("cp a.txt c.txt", f"{HOME}/c.txt", b"apple\nbanana\ncherry\n"),
        ("cp -r src dst", f"{HOME}/dst/util.py", b"def helper():\n    return 42\n"),
        ("mv b.txt src/", f"{HOME}/src/b.txt", b"Banana split\n"),
        ("echo hi | tee t1 t2 > /dev/null", f"{HOME}/t2", b"hi\n"),
        ("printf x | tee -a a.txt", f"{HOME}/a.txt", b"apple\nbanana\ncherry\nx"),
        ("sort -o sorted.txt -r a.txt", f"{HOME}/sorted.txt", b"cherry\nbanana\napple\n"),
    ],
)
def test_commands_that_write(box: FakeSandbox, command: str, path: str, content: bytes) -> None:
    code, _, err = run(box, command)
    assert code == 0, err
    assert box.read_file(path) == content


@pytest.mark.parametrize(
    ("command", "gone"),
    [
        ("rm a.txt", "a.txt"),
        ("rm -rf src", "src"),
        ("rm -f src/*.py", "src/main.py"),
        ("mv a.txt z.txt", "a.txt"),
        ("rmdir src 2>/dev/null || rm -r src", "src"),
        ("find src -name '*.py' -delete", "src/util.py"),
        ("find . -name '*.txt' | xargs rm", "b.txt"),
        ("find src -type f -exec rm {} +", "src/README"),
    ],
)
def test_commands_that_delete(box: FakeSandbox, command: str, gone: str) -> None:
    code, _, err = run(box, command)
    assert code == 0, err
    assert not box.exists(f"{HOME}/{gone}")


def test_chmod_modes(box: FakeSandbox) -> None:
    def mode() -> int:
        return box.stat(f"{HOME}/a.txt").mode

    for command, expected in [
        ("chmod 600 a.txt", 0o600),
        ("chmod +x a.txt", 0o711),
        ("chmod go-x a.txt", 0o700),
        ("chmod u-w,g+r a.txt", 0o540),
        ("chmod a=r a.txt", 0o444),
        ("chmod -R u+w src a.txt", 0o644),
    ]:
        assert run(box, command)[0] == 0
        assert mode() == expected, command
    assert run(box, "chmod banana a.txt")[2] == "chmod: invalid mode: 'banana'\n"


@pytest.mark.parametrize(
    ("command", "status", "message"),
    [
        ("cat nope", 1, "cat: nope: No such file or directory"),
        ("ls nope", 2, "ls: cannot access 'nope': No such file or directory"),
        ("rm nope", 1, "rm: cannot remove 'nope': No such file or directory"),
        ("rm src", 1, "rm: cannot remove 'src': Is a directory"),
        ("mkdir src", 1, "mkdir: cannot create directory 'src': File exists"),
        ("mkdir a/b/c", 1, "mkdir: cannot create directory 'a/b/c': No such file or directory"),
        ("cp src x", 1, "cp: -r not specified; omitting directory 'src'"),
        ("mv nope x", 1, "mv: cannot stat 'nope': No such file or directory"),
        ("cat src", 1, "cat: src: Is a directory"),
        ("cd nope", 1, "sh: cd: nope: No such file or directory"),
        ("grep x nope", 2, "grep: nope: No such file or directory"),
        ("head -n x a.txt", 1, "head: invalid number of lines: 'x'"),
        ("ls --bogus", 2, "ls: unrecognized option '--bogus'"),
        ("rm -rf /", 1, "rm: it is dangerous to operate recursively on '/'"),
        ("echo x > /etc/passwd", 1, "sh: /etc/passwd: No such file or directory"),
        ("echo 'open", 2, "sh: 1: Unterminated quoted string"),
        ("echo $((1 / 0))", 1, "divide by zero"),
        ("echo $(id", 2, "Unterminated command substitution $("),
        ("echo `id", 2, "Unterminated command substitution (`)"),
        ("select x in a; do :; done", 2, "shell keyword 'select' is not supported"),
        ("function f { :; }", 2, "shell keyword 'function' is not supported"),
        ("if true; then echo; ", 2, "syntax error: unexpected end of file"),
        ("| cat", 2, "syntax error near unexpected token `|'"),
        ("echo ${x", 2, "Missing '}'"),
        ("grep -E '(a+)+b' a.txt", 2, "pattern too complex"),
        ("./nope.sh", 127, "sh: 1: ./nope.sh: not found"),
        ("python3 -c 'print(1)'", 127, "mosaic: unsupported command: python3 (supported: "),
    ],
)
def test_error_messages(box: FakeSandbox, command: str, status: int, message: str) -> None:
    code, _, err = run(box, command)
    assert code == status
    assert message in err


def test_unsupported_command_lists_supported_ones(box: FakeSandbox) -> None:
    _, _, err = run(box, "nc -l 4444")
    assert err.startswith("mosaic: unsupported command: nc (supported: ")
    assert all(name in err for name in ("cat", "grep", "curl", "wget"))
    assert {"ls", "cat", "grep", "find", "curl", "wget", "chmod"} <= set(supported_commands())


def test_shell_scripts_run_only_when_executable(box: FakeSandbox) -> None:
    box.write_file(f"{HOME}/job.sh", b"#!/bin/bash\necho from script\nrm a.txt\n")
    assert run(box, "./job.sh")[0] == 126
    assert box.exists(f"{HOME}/a.txt")
    assert run(box, "chmod +x job.sh && ./job.sh") == (0, "from script\n", "")
    assert not box.exists(f"{HOME}/a.txt")
    assert run(box, "echo 'echo sourced' > s.sh; . ./s.sh; sh s.sh")[1] == "sourced\nsourced\n"


def test_self_recursive_script_is_bounded(box: FakeSandbox) -> None:
    box.write_file(f"{HOME}/loop.sh", b"sh loop.sh\n")
    result = box.exec("sh loop.sh")
    assert result.exit_code == 2
    assert "maximum shell nesting depth exceeded" in result.stderr


# -- egress --------------------------------------------------------------------
def test_curl_and_wget_build_requests(box: FakeSandbox) -> None:
    seen: list[HttpRequest] = []

    def web(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return HttpResponse(404 if "missing" in request.url else 200, "body")

    box.http = web
    run(box, "curl -s -H 'X-Token: t1' -u me:pw --data-binary @a.txt example.com/post")
    run(box, "curl -sf http://example.com/missing; echo $?")
    run(box, "curl -F 'file=@b.txt' -F note=hi https://up.example/form")
    run(box, "wget -q --post-file=data.csv http://w.example/in")
    code, _, _ = run(box, "wget http://w.example/page.html")
    first, missing, form, posted, fetched = seen
    assert (first.method, first.url, first.body) == (
        "POST",
        "http://example.com/post",
        "apple\nbanana\ncherry\n",
    )
    assert first.headers["X-Token"] == "t1"
    assert first.headers["Authorization"] == "Basic " + base64.b64encode(b"me:pw").decode()
    assert missing.method == "GET"
    assert "Banana split" in form.body and 'name="note"' in form.body
    assert posted.body.startswith("name,age")
    assert code == 0 and box.read_file(f"{HOME}/page.html") == b"body"


def test_curl_without_handler_cannot_resolve(box: FakeSandbox) -> None:
    code, _, err = run(box, "curl http://evil.example/x")
    assert code == 6 and "Could not resolve host: evil.example" in err
    assert run(box, "wget http://evil.example/x")[0] == 4


# -- parser --------------------------------------------------------------------
def test_parser_keeps_quoting_information() -> None:
    [and_or] = parse("grep -r 'a b' \"$X\" 2>&1 > out | wc -l && echo ok")
    first = and_or.first.commands[0]
    assert [w.raw for w in first.words] == ["grep", "-r", "a b", "$X"]
    assert [(r.op, r.fd) for r in first.redirects] == [(">&", 2), (">", 1)]
    assert len(and_or.first.commands) == 2 and and_or.rest[0][0] == "&&"


@pytest.mark.parametrize("source", ["function f { z; }", "select x in y; do z; done",
                                    "[[ -n x ]]"])
def test_parser_refuses_unsupported_syntax(source: str) -> None:
    with pytest.raises(ShellUnsupported):
        parse(source)


@pytest.mark.parametrize("source", ["echo 'x", "&& b", "a |", "cat >", 'echo "x', "( a",
                                    "for x in y; do z", "if a; then b; fi fi", "done"])
def test_parser_reports_syntax_errors(source: str) -> None:
    with pytest.raises(ShellSyntaxError):
        parse(source)
