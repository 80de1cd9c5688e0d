"""The table of every command the fake shell knows, and how a name is resolved:
a builtin or command by name, ``/bin/NAME``, or a shell script in the fake tree."""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from mosaic_gym.sandbox.fake.shell import (
    archive,
    builtins,
    changes,
    files,
    find,
    grep,
    net,
    printing,
    sed,
    text,
)
from mosaic_gym.sandbox.fake.shell.builtins import run_child
from mosaic_gym.sandbox.fake.shell.streams import CommandFn, StreamIO, decode

if TYPE_CHECKING:
    from mosaic_gym.sandbox.fake.shell.interpreter import Shell

BIN_DIRS = frozenset({"/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin"})
SHELLS = frozenset({"sh", "bash", "dash"})


def resolve_command(shell: Shell, name: str) -> CommandFn | None:
    """The implementation of ``name``: a builtin, a command, ``/bin/NAME`` or a script."""
    registry = commands()
    if "/" not in name:
        return registry.get(name)
    if posixpath.dirname(name) in BIN_DIRS and posixpath.basename(name) in registry:
        return registry[posixpath.basename(name)]
    return run_file


def unsupported(shell: Shell, argv: list[str], io: StreamIO) -> int:
    supported = ", ".join(sorted(commands()))
    io.error(f"mosaic: unsupported command: {argv[0]} (supported: {supported})")
    return 127


def commands() -> dict[str, CommandFn]:
    """Every command the fake shell knows, by name (a constant table)."""
    return COMMANDS


def run_file(shell: Shell, argv: list[str], io: StreamIO) -> int:
    """``./script.sh``: run an executable shell script from the fake tree."""
    name = argv[0]
    path = shell.resolve(name)
    if not shell.sandbox.exists(path):
        io.error(f"sh: 1: {name}: not found")
        return 127
    entry = shell.sandbox.stat(path)
    if entry.is_dir or not entry.mode & 0o100:
        io.error(f"sh: 1: {name}: Permission denied")
        return 126
    source = decode(shell.read_path(name))
    first = source.split("\n", 1)[0]
    if first.startswith("#!"):
        interpreter = first[2:].split()
        program = posixpath.basename(interpreter[0]) if interpreter else ""
        if program == "env" and len(interpreter) > 1:
            program = interpreter[1]
        if program not in SHELLS:
            return unsupported(shell, [program or name], io)
    return run_child(shell, source, io, errexit=False)


def which(shell: Shell, argv: list[str], io: StreamIO) -> int:
    """``which NAME`` / ``command -v NAME`` / ``type NAME``; ``command CMD`` runs CMD."""
    args = argv[1:]
    if argv[0] == "command":
        if args[:1] not in (["-v"], ["-V"]):
            return shell.run_argv(args, io) if args else 0
        args = args[1:]
    status = 0
    for name in args:
        if name in commands():
            builtin = name in builtins.BUILTINS and argv[0] != "which"
            where = name if builtin else f"/usr/bin/{name}"
            if argv[0] == "type":
                where = f"{name} is " + ("a shell builtin" if builtin else where)
            io.write(where + "\n")
        else:
            status = 1
    return status


COMMANDS: dict[str, CommandFn] = {
    **files.COMMANDS,
    **changes.COMMANDS,
    **find.COMMANDS,
    **grep.COMMANDS,
    **text.COMMANDS,
    **printing.COMMANDS,
    **net.COMMANDS,
    **sed.COMMANDS,
    **archive.COMMANDS,
    **builtins.BUILTINS,
    "which": which,
    "command": which,
    "type": which,
}
