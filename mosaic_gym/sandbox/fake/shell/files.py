"""Commands that read the tree without changing it: ls, cat, head, tail, basename,
dirname, realpath/readlink. GNU coreutils wording for errors."""

from __future__ import annotations

import posixpath
import re
import stat
from typing import TYPE_CHECKING

from mosaic_gym.sandbox.base import FileEntry
from mosaic_gym.sandbox.fake.shell.streams import (
    CommandFn,
    StreamIO,
    UsageError,
    describe,
    parse_options,
)

if TYPE_CHECKING:
    from mosaic_gym.sandbox.fake.shell.interpreter import Shell


def split_lines(data: bytes) -> list[bytes]:
    """Lines with their ``\\n`` kept (the last one may lack it)."""
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def mode_string(entry: FileEntry) -> str:
    """``drwxr-xr-x`` style permissions, as ``ls -l`` prints them."""
    return ("d" if entry.is_dir else "-") + stat.filemode(entry.mode)[1:]


def ls(shell: Shell, argv: list[str], io: StreamIO) -> int:
    long_names = {"--all": "a", "--almost-all": "A", "--recursive": "R", "--directory": "d"}
    options = parse_options(argv[1:], "laAR1hdFrSt", long=long_names, usage_status=2)
    targets = options.operands or ["."]
    status = 0
    files: list[tuple[str, FileEntry]] = []
    dirs: list[tuple[str, FileEntry]] = []
    for target in targets:
        try:
            entry = shell.sandbox.stat(shell.resolve(target))
        except OSError as exc:
            io.error(f"ls: cannot access '{target}': {describe(exc)}")
            status = 2
            continue
        (dirs if entry.is_dir and "d" not in options else files).append((target, entry))
    if files:
        _ls_rows(io, options.flags, [(name, entry) for name, entry in files])
    queue = list(dirs)
    first = not files
    while queue:
        shown, entry = queue.pop(0)
        try:
            entries = shell.sandbox.list_dir(entry.path)
        except OSError as exc:
            io.error(f"ls: cannot open directory '{shown}': {describe(exc)}")
            status = 2
            continue
        if "a" not in options and "A" not in options:
            entries = [e for e in entries if not e.name.startswith(".")]
        if "R" in options or len(targets) > 1:
            io.write(("" if first else "\n") + f"{shown}:\n")
        first = False
        rows = [(e.name, e) for e in entries]
        if "a" in options:
            parent = shell.sandbox.stat(posixpath.dirname(entry.path))
            rows = [(".", entry), ("..", parent), *rows]
        if "l" in options:
            io.write(f"total {sum(4 * -(-e.size // 4096) for _, e in rows)}\n")
        _ls_rows(io, options.flags, rows)
        if "R" in options:
            subdirs = [(posixpath.join(shown, e.name), e) for e in entries if e.is_dir]
            queue[:0] = subdirs
    return status


def _ls_rows(io: StreamIO, flags: set[str], rows: list[tuple[str, FileEntry]]) -> None:
    if "S" in flags:
        rows = sorted(rows, key=lambda row: -row[1].size)
    if "r" in flags:
        rows = rows[::-1]
    width = max((len(str(entry.size)) for _, entry in rows), default=1)
    for name, entry in rows:
        suffix = "/" if "F" in flags and entry.is_dir else ""
        if "l" in flags:
            size = 4096 if entry.is_dir else entry.size
            io.write(f"{mode_string(entry)} 1 user user {size:>{width}} Jan  1 00:00 ")
        io.write(f"{name}{suffix}\n")


def cat(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(argv[1:], "nAbeEsTuv", long={"--number": "n"})
    status, number = 0, 1
    for name in options.operands or ["-"]:
        try:
            data = shell.read_path(name, io.stdin)
        except OSError as exc:
            io.error(f"cat: {name}: {describe(exc)}")
            status = 1
            continue
        if "n" not in options:
            io.write(data)
            continue
        for line in split_lines(data):
            io.write(f"{number:6}\t".encode() + line)
            number += 1
    return status


def _count_option(argv: list[str]) -> list[str]:
    """``head -5`` means ``head -n 5``."""
    return [f"-n{arg[1:]}" if re.fullmatch(r"-\d+", arg) else arg for arg in argv[1:]]


def head_tail(shell: Shell, argv: list[str], io: StreamIO) -> int:
    name = argv[0]
    long_names = {"--lines": "n", "--bytes": "c", "--quiet": "q", "--follow": "f"}
    options = parse_options(_count_option(argv), "qvfF", "nc", long_names)
    use_bytes = "c" in options
    spec = options.value("c" if use_bytes else "n", "10") or "10"
    match = re.fullmatch(r"([+-]?)(\d+)", spec)
    if match is None:
        raise UsageError(f"invalid number of {'bytes' if use_bytes else 'lines'}: '{spec}'")
    sign, count = match.group(1), int(match.group(2))
    operands = options.operands or ["-"]
    status = 0
    for index, operand in enumerate(operands):
        try:
            data = shell.read_path(operand, io.stdin)
        except OSError as exc:
            io.error(f"{name}: cannot open '{operand}' for reading: {describe(exc)}")
            status = 1
            continue
        if (len(operands) > 1 and "q" not in options) or "v" in options:
            io.write(("\n" if index else "") + f"==> {operand} <==\n")
        items: list[bytes] | bytes = data if use_bytes else split_lines(data)
        if name == "head":
            chosen = items[: len(items) - count] if sign == "-" else items[:count]
        elif sign == "+":
            chosen = items[max(count - 1, 0) :]
        else:
            chosen = items[len(items) - count :] if count else items[:0]
        io.write(chosen if isinstance(chosen, bytes) else b"".join(chosen))
    return status


def basename(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(argv[1:], "az", "s")
    if not options.operands:
        raise UsageError("missing operand")
    suffix = options.value("s")
    names = options.operands if ("a" in options or suffix) else options.operands[:1]
    if suffix is None and "a" not in options and len(options.operands) > 1:
        suffix = options.operands[1]
    for name in names:
        base = posixpath.basename(name.rstrip("/")) or ("/" if name.startswith("/") else "")
        if suffix and base.endswith(suffix) and base != suffix:
            base = base[: -len(suffix)]
        io.write(base + "\n")
    return 0


def dirname(shell: Shell, argv: list[str], io: StreamIO) -> int:
    if len(argv) < 2:
        raise UsageError("missing operand")
    for name in argv[1:]:
        stripped = name.rstrip("/") or "/"
        io.write((posixpath.dirname(stripped).rstrip("/") or ("/" if "/" in name else ".")) + "\n")
    return 0


def realpath(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(argv[1:], "femnqsz")
    if argv[0] == "readlink" and "f" not in options and "e" not in options and "m" not in options:
        return 1  # no symbolic links exist in the fake tree
    for name in options.operands:
        io.write(shell.resolve(name) + "\n")
    return 0


COMMANDS: dict[str, CommandFn] = {
    "ls": ls,
    "cat": cat,
    "head": head_tail,
    "tail": head_tail,
    "basename": basename,
    "dirname": dirname,
    "realpath": realpath,
    "readlink": realpath,
}
