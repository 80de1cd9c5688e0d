"""Builtins that act on the shell itself: cd, pwd, export/unset, set, exit, sleep,
timeout, env, xargs, sh/bash -c, eval, source, true/false, break/continue, read."""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING

from mosaic_gym.sandbox.fake.shell.streams import (
    MAX_DEPTH,
    CommandFn,
    ShellBreak,
    ShellExit,
    ShellReturn,
    ShellTimeout,
    StreamIO,
    UsageError,
    decode,
    describe,
    parse_options,
)

if TYPE_CHECKING:
    from mosaic_gym.sandbox.fake.shell.interpreter import Shell

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smhd]?)\Z")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def run_child(shell: Shell, source: str, io: StreamIO, *, errexit: bool) -> int:
    """Run ``source`` in a child shell (own cwd and variables, shared time budget)."""
    if shell.depth >= MAX_DEPTH:
        io.error("mosaic: maximum shell nesting depth exceeded")
        return 2
    child = type(shell)(shell.sandbox, timeout=0, output_cap=shell.output_cap, parent=shell)
    child.errexit = errexit
    return child.run_source(source, io)


def builtin_sh(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(argv[1:], "exsuvi", "co", stop_at_operand=True, usage_status=2)
    if "c" in options:
        source = options.value("c") or ""
    elif options.operands:
        source = decode(shell.read_path(options.operands[0]))
    else:
        source = decode(io.stdin)
    return run_child(shell, source, io, errexit="e" in options)


def builtin_eval(shell: Shell, argv: list[str], io: StreamIO) -> int:
    return _in_place(shell, " ".join(argv[1:]), io)


def builtin_source(shell: Shell, argv: list[str], io: StreamIO) -> int:
    if len(argv) < 2:
        raise UsageError("filename argument required", 2)
    return _in_place(shell, decode(shell.read_path(argv[1])), io)


def _in_place(shell: Shell, source: str, io: StreamIO) -> int:
    if shell.depth >= MAX_DEPTH:
        io.error("mosaic: maximum shell nesting depth exceeded")
        return 2
    shell.depth += 1
    try:
        return shell.run_source(source, io, catch_exit=False)
    finally:
        shell.depth -= 1


def builtin_cd(shell: Shell, argv: list[str], io: StreamIO) -> int:
    target = argv[1] if len(argv) > 1 else shell.env.get("HOME", "/")
    if target == "-":
        target = shell.env.get("OLDPWD", shell.cwd)
        io.write(target + "\n")
    path = shell.resolve(target)
    try:
        if not shell.sandbox.stat(path).is_dir:
            io.error(f"sh: cd: {target}: Not a directory")
            return 1
    except OSError as exc:
        io.error(f"sh: cd: {target}: {describe(exc)}")
        return 1
    shell.env["OLDPWD"], shell.cwd = shell.cwd, path
    shell.env["PWD"] = path
    return 0


def builtin_pwd(shell: Shell, argv: list[str], io: StreamIO) -> int:
    io.write(shell.cwd + "\n")
    return 0


def builtin_export(shell: Shell, argv: list[str], io: StreamIO) -> int:
    names = [arg for arg in argv[1:] if arg != "-p"]
    if not names:
        for name in sorted(shell.env):
            io.write(f"export {name}={shlex.quote(shell.env[name])}\n")
        return 0
    status = 0
    for arg in names:
        name, has_value, value = arg.partition("=")
        if not _NAME.match(name):
            io.error(f"sh: {argv[0]}: `{arg}': not a valid identifier")
            status = 1
        elif argv[0] == "unset":
            shell.env.pop(name, None)
        elif has_value:
            shell.env[name] = value
        else:
            shell.env.setdefault(name, "")
    return status


def builtin_set(shell: Shell, argv: list[str], io: StreamIO) -> int:
    if len(argv) == 1:
        for name in sorted(shell.env):
            io.write(f"{name}={shlex.quote(shell.env[name])}\n")
        return 0
    if "--" in argv[1:]:
        shell.args = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    args = iter(argv[1:])
    for arg in args:
        on = arg.startswith("-")
        if arg in ("-o", "+o"):
            option = next(args, "")
            if option == "pipefail":
                shell.pipefail = on
            elif option == "errexit":
                shell.errexit = on
            elif option not in ("nounset", "xtrace", "noclobber", "posix"):
                raise UsageError(f"{option}: invalid option name", 2)
            continue
        if arg[:1] not in ("-", "+") or len(arg) < 2:
            continue  # positional parameters are not supported; ignore them
        for letter in arg[1:]:
            if letter == "e":
                shell.errexit = on
            elif letter == "o":
                option = next(args, "")
                if option == "pipefail":
                    shell.pipefail = on
            elif letter not in "uxvfhCnb":
                raise UsageError(f"-{letter}: invalid option", 2)
    return 0


def builtin_exit(shell: Shell, argv: list[str], io: StreamIO) -> int:
    if len(argv) > 1:
        if not re.fullmatch(r"-?\d{1,12}", argv[1]):
            io.error(f"sh: exit: {argv[1]}: numeric argument required")
            raise ShellExit(2)
        raise ShellExit(int(argv[1]) & 0xFF)
    raise ShellExit(shell.status)


def parse_duration(text: str) -> float:
    match = _DURATION.match(text)
    if match is None:
        raise UsageError(f"invalid time interval '{text}'")
    return float(match.group(1)) * _UNITS[match.group(2)]


def builtin_sleep(shell: Shell, argv: list[str], io: StreamIO) -> int:
    if len(argv) < 2:
        raise UsageError("missing operand")
    shell.budget.charge(sum(parse_duration(arg) for arg in argv[1:]))
    return 0


def builtin_timeout(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(argv[1:], "v", "sk", {"--signal": "s"}, stop_at_operand=True)
    if len(options.operands) < 2:
        raise UsageError("missing operand", 125)
    budget = shell.budget
    saved = budget.deadline
    limit = min(saved, budget.clock + parse_duration(options.operands[0]))
    budget.deadline = limit
    try:
        return shell.run_argv(options.operands[1:], io)
    except ShellTimeout as exc:
        if exc.deadline < saved:
            budget.clock = limit
            return 124
        raise
    finally:
        budget.deadline = saved


def builtin_env(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(argv[1:], "i0", "u", {"--unset": "u"}, stop_at_operand=True)
    env = {} if "i" in options else dict(shell.env)
    for name in options.all("u"):
        env.pop(name, None)
    operands = list(options.operands)
    while operands and "=" in operands[0]:
        name, _, value = operands.pop(0).partition("=")
        env[name] = value
    if not operands:
        for name in sorted(env):
            io.write(f"{name}={env[name]}\n")
        return 0
    saved, shell.env = shell.env, env
    try:
        return shell.run_argv(operands, io)
    finally:
        shell.env = saved


def builtin_xargs(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(argv[1:], "0rtx", "nIdL", stop_at_operand=True)
    text = decode(io.stdin)
    command = options.operands or ["echo"]
    replace = options.value("I")
    if "0" in options:
        items = [item for item in text.split("\0") if item]
    elif replace is not None or "L" in options:
        items = [line.strip() for line in text.split("\n") if line.strip()]
    elif options.value("d") is not None:
        items = [item for item in text.split(options.value("d") or "\n") if item]
    elif any(char in text for char in "'\"\\"):
        shell.budget.charge(len(text) * 1e-6)  # shlex is slow; make the clock feel it
        try:
            items = shlex.split(text)
        except ValueError:
            items = text.split()
    else:
        items = text.split()
    if replace is not None:
        batches = [[arg.replace(replace, item) for arg in command] for item in items]
    else:
        size = int(options.value("n") or options.value("L") or 0) or len(items) or 1
        chunks = [items[start : start + size] for start in range(0, len(items), size)]
        batches = [command + chunk for chunk in chunks]
        if not batches and "r" not in options:
            batches = [command]
    status = 0
    for batch in batches:
        child_io = StreamIO(shell.budget, b"", io.out, io.err)
        if shell.run_argv(batch, child_io) != 0:
            status = 123
    return status


def builtin_return(shell: Shell, argv: list[str], io: StreamIO) -> int:
    """``return [N]``: end the running function (outside one, like ``exit`` in a script
    run by ``sh``; here: an error, as dash says)."""
    if len(argv) > 1 and not re.fullmatch(r"-?\d{1,12}", argv[1]):
        io.error(f"sh: return: Illegal number: {argv[1]}")
        return 2
    code = int(argv[1]) & 0xFF if len(argv) > 1 else shell.status
    if not shell.frames:
        raise ShellExit(code)
    raise ShellReturn(code)


def builtin_shift(shell: Shell, argv: list[str], io: StreamIO) -> int:
    count = 1
    if len(argv) > 1:
        if not re.fullmatch(r"\d{1,6}", argv[1]):
            io.error(f"sh: shift: Illegal number: {argv[1]}")
            return 2
        count = int(argv[1])
    if count > len(shell.args):
        io.error("sh: shift: can't shift that many")
        return 2
    shell.args = shell.args[count:]
    return 0


def builtin_local(shell: Shell, argv: list[str], io: StreamIO) -> int:
    """``local NAME[=VALUE]...``: variables restored when the function returns."""
    if not shell.frames:
        io.error("sh: local: not in a function")
        return 2
    frame = shell.frames[-1]
    for arg in argv[1:]:
        name, has_value, value = arg.partition("=")
        if not _NAME.match(name):
            io.error(f"sh: local: '{arg}': not a valid identifier")
            return 2
        frame.setdefault(name, shell.env.get(name))
        if has_value:
            shell.env[name] = value
    return 0


def builtin_break(shell: Shell, argv: list[str], io: StreamIO) -> int:
    """``break [N]`` / ``continue [N]``; outside a loop they do nothing (as dash)."""
    levels = 1
    if len(argv) > 1:
        if not re.fullmatch(r"\d{1,6}", argv[1]) or int(argv[1]) < 1:
            io.error(f"sh: {argv[0]}: Illegal number: {argv[1]}")
            return 2
        levels = int(argv[1])
    if not shell.loops:
        return 0
    raise ShellBreak(min(levels, shell.loops), resume=argv[0] == "continue")


def builtin_read(shell: Shell, argv: list[str], io: StreamIO) -> int:
    """``read [-r] [-p PROMPT] [NAME...]``: one line of standard input into variables.

    Inside a compound command the line is consumed from the shared input (see
    :class:`~mosaic_gym.sandbox.fake.shell.streams.Input`), so a ``while read`` loop
    walks a file; elsewhere it reads the first line. At end of input: status 1.
    """
    options = parse_options(argv[1:], "rs", "ptnd", usage_status=2)
    names = options.operands or ["REPLY"]
    for name in names:
        if not _NAME.match(name):
            io.error(f"sh: read: '{name}': not a valid identifier")
            return 2
    data = io.cursor.rest() if io.cursor is not None else io.stdin
    raw = "r" in options
    consumed, line, found = 0, [], False
    while True:
        end = data.find(b"\n", consumed)
        piece = data[consumed:] if end < 0 else data[consumed:end]
        consumed = len(data) if end < 0 else end + 1
        text = decode(piece)
        if not raw and text.endswith("\\") and end >= 0:
            line.append(text[:-1])
            continue
        line.append(text)
        found = end >= 0
        break
    if io.cursor is not None:
        io.cursor.pos += consumed
    text = "".join(line)
    if not raw:
        text = re.sub(r"\\(.)", r"\1", text)
    ifs = shell.env.get("IFS", " \t\n")
    fields = _split_ifs(text, ifs, len(names))
    for index, name in enumerate(names):
        shell.env[name] = fields[index] if index < len(fields) else ""
    return 0 if found else 1


def _split_ifs(text: str, ifs: str, count: int) -> list[str]:
    """Split ``text`` into at most ``count`` fields on IFS (the last keeps the rest,
    trimmed of IFS whitespace), as ``read`` does."""
    if not ifs:
        return [text]
    spaces = "".join(c for c in ifs if c in " \t\n")
    others = "".join(c for c in ifs if c not in " \t\n")
    white = f"[{re.escape(spaces)}]" if spaces else ""
    if others:
        around = f"{white}*" if white else ""
        pattern = f"{around}[{re.escape(others)}]{around}" + (f"|{white}+" if white else "")
    else:
        pattern = f"{white}+"
    if spaces:
        text = text.strip(spaces)
    return re.split(pattern, text, maxsplit=count - 1) if text else []


def _status(code: int) -> CommandFn:
    return lambda shell, argv, io: code


BUILTINS: dict[str, CommandFn] = {
    "sh": builtin_sh,
    "bash": builtin_sh,
    "dash": builtin_sh,
    "eval": builtin_eval,
    "source": builtin_source,
    ".": builtin_source,
    "cd": builtin_cd,
    "pwd": builtin_pwd,
    "export": builtin_export,
    "unset": builtin_export,
    "set": builtin_set,
    "exit": builtin_exit,
    "sleep": builtin_sleep,
    "timeout": builtin_timeout,
    "nohup": lambda shell, argv, io: shell.run_argv(argv[1:], io) if argv[1:] else 125,
    "env": builtin_env,
    "xargs": builtin_xargs,
    "return": builtin_return,
    "shift": builtin_shift,
    "local": builtin_local,
    "break": builtin_break,
    "continue": builtin_break,
    "read": builtin_read,
    "true": _status(0),
    ":": _status(0),
    "false": _status(1),
}

#: Every command the shell dispatches to, by name.
