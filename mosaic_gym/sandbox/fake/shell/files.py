"""Commands that read the tree without changing it: ls, cat, head, tail, basename,
dirname, realpath/readlink, stat. GNU coreutils wording for errors; ``stat`` prints
what busybox ``stat`` (the docker image's) prints."""

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


#: What ``stat`` reports for times, devices and owners (the fake tree keeps none).
_STAMP = "2024-01-01 00:00:00.000000000 +0000"
_EPOCH = 1704067200
_STAT_FORMAT = re.compile(r"%(.)|\\(.)", re.DOTALL)


def _stat_fields(name: str, path: str, entry: FileEntry, links: int) -> dict[str, str]:
    kind = "directory" if entry.is_dir else (
        "regular file" if entry.size else "regular empty file")
    size = 4096 if entry.is_dir else entry.size
    blocks = 8 * -(-size // 4096)
    file_type = 0o040000 if entry.is_dir else 0o100000
    return {
        "n": name, "N": f"'{name}'", "s": str(size), "a": f"{entry.mode & 0o7777:o}",
        "A": mode_string(entry), "U": "user", "G": "user", "u": "1000", "g": "1000",
        "F": kind, "h": str(links), "b": str(blocks), "B": "512", "o": "4096",
        "i": str(sum(path.encode()) * 7919 % 9_000_000 + 1000), "d": "65024", "D": "fe00",
        "f": f"{file_type | entry.mode:x}", "t": "0", "T": "0", "m": "/",
        "x": _STAMP, "y": _STAMP, "z": _STAMP, "w": "-",
        "X": str(_EPOCH), "Y": str(_EPOCH), "Z": str(_EPOCH), "W": "0", "%": "%",
    }  # fmt: skip


def stat_command(shell: Shell, argv: list[str], io: StreamIO) -> int:
    """``stat [-c FORMAT | --printf FORMAT] [-L] [-t] FILE...`` (busybox's output)."""
    long_names = {"--format": "c", "--printf": "p", "--dereference": "L", "--terse": "t"}
    options = parse_options(argv[1:], "Lft", "cp", long_names)
    if not options.operands:
        raise UsageError("missing operand")
    fmt = options.value("c")
    printf = options.value("p")
    status = 0
    for name in options.operands:
        path = shell.resolve(name)
        try:
            entry = shell.sandbox.stat(path)
            links = 1
            if entry.is_dir:
                links = 2 + sum(child.is_dir for child in shell.sandbox.list_dir(path))
        except OSError as exc:
            io.error(f"stat: can't stat '{name}': {describe(exc)}")
            status = 1
            continue
        fields = _stat_fields(name, path, entry, links)
        if fmt is not None:
            io.write(_stat_format(fmt, fields, False) + "\n")
            continue
        if printf is not None:
            io.write(_stat_format(printf, fields, True))
            continue
        io.write(
            f"  File: {name}\n"
            f"  Size: {fields['s']:<10}\tBlocks: {fields['b']:<10} IO Block: 4096   "
            f"{fields['F']}\n"
            f"Device: fe00h/65024d\tInode: {fields['i']:<11} Links: {links}\n"
            f"Access: (0{fields['a'][-3:].rjust(3, '0')}/{fields['A']})  "
            f"Uid: ( 1000/    user)   Gid: ( 1000/    user)\n"
            f"Access: {_STAMP}\nModify: {_STAMP}\nChange: {_STAMP}\n"
        )
    return status


def _stat_format(fmt: str, fields: dict[str, str], escapes: bool) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return fields.get(match.group(1), "?")
        if not escapes:
            return match.group(0)
        return {"n": "\n", "t": "\t", "\\": "\\", "r": "\r"}.get(match.group(2),
                                                                 match.group(0))

    return _STAT_FORMAT.sub(one, fmt)


COMMANDS: dict[str, CommandFn] = {
    "stat": stat_command,
    "ls": ls,
    "cat": cat,
    "head": head_tail,
    "tail": head_tail,
    "basename": basename,
    "dirname": dirname,
    "realpath": realpath,
    "readlink": realpath,
}
