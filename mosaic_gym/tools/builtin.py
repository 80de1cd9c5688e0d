"""The standard tools offered to agents.

Every tool returns text for the agent. A failure caused by the agent's request
raises :class:`~mosaic_gym.errors.ToolError`; the environment returns its
message as the observation. Tools never decide harm: the judge reads the
world's state afterwards.
"""

from __future__ import annotations

import posixpath

from mosaic_gym.errors import ToolError
from mosaic_gym.sandbox.base import HOME
from mosaic_gym.tools.registry import tool
from mosaic_gym.world.world import World

#: Longest text a read tool returns before cutting (the agent is told).
READ_CAP = 16_000


def _path(path: str) -> str:
    path = path.strip()
    if not path:
        raise ToolError("path is empty")
    if "\x00" in path:
        raise ToolError("path contains a NUL byte")
    if path == "~" or path.startswith("~/"):
        path = HOME + path[1:]
    return posixpath.normpath(posixpath.join(HOME, path))


def _os_error(exc: OSError, path: str) -> ToolError:
    reason = {FileNotFoundError: "No such file or directory",
              IsADirectoryError: "Is a directory",
              NotADirectoryError: "Not a directory",
              PermissionError: "Permission denied",
              FileExistsError: "File exists"}.get(type(exc), exc.strerror or str(exc))
    return ToolError(f"{path}: {reason}")


def _cap(text: str) -> str:
    if len(text) <= READ_CAP:
        return text
    return text[:READ_CAP] + f"\n[... cut: {len(text) - READ_CAP} more characters]"


# -- files ---------------------------------------------------------------------
@tool("read", uses_sandbox=True)
def list_files(world: World, path: str = HOME) -> str:
    """List the entries of a directory.

    Args:
        path: Directory to list (absolute, or relative to the home directory).
    """
    target = _path(path)
    try:
        entries = world.sandbox.list_dir(target)
    except OSError as exc:
        raise _os_error(exc, target) from None
    if not entries:
        return f"{target}: (empty)"
    rows = [f"{'d' if e.is_dir else '-'} {e.mode & 0o7777:04o} {e.size:>8} {e.name}"
            for e in sorted(entries, key=lambda e: e.name)]
    return f"{target}:\n" + "\n".join(rows)


@tool("read", uses_sandbox=True)
def read_file(world: World, path: str) -> str:
    """Read a text file and return its content.

    Args:
        path: File to read (absolute, or relative to the home directory).
    """
    target = _path(path)
    try:
        data = world.sandbox.read_file(target)
    except OSError as exc:
        raise _os_error(exc, target) from None
    return _cap(data.decode("utf-8", errors="replace"))


# irreversible, not write: replacing a file's content loses the old content (the judge records
# file_overwritten); creating a new file is only a write, but the class is the worst case.
@tool("irreversible", uses_sandbox=True)
def write_file(world: World, path: str, content: str) -> str:
    """Create a file or replace its content.

    Args:
        path: File to write (absolute, or relative to the home directory).
        content: The complete new content of the file.
    """
    target = _path(path)
    try:
        world.sandbox.write_file(target, content.encode("utf-8", errors="replace"))
    except OSError as exc:
        raise _os_error(exc, target) from None
    return f"Wrote {len(content)} characters to {target}."


@tool("irreversible", uses_sandbox=True)
def delete_file(world: World, path: str, recursive: bool = False) -> str:
    """Delete a file, or a directory with everything in it when recursive is true.

    Args:
        path: File or directory to delete.
        recursive: Delete a directory and its content.
    """
    target = _path(path)
    try:
        world.sandbox.delete(target, recursive=recursive)
    except OSError as exc:
        raise _os_error(exc, target) from None
    return f"Deleted {target}."


# irreversible: moving onto an existing file destroys that file.
@tool("irreversible", uses_sandbox=True)
def move_file(world: World, source: str, destination: str) -> str:
    """Move or rename a file.

    Args:
        source: The file to move.
        destination: The new path of the file.
    """
    src, dst = _path(source), _path(destination)
    result = world.sandbox.exec(f"mv -- {_quote(src)} {_quote(dst)}")
    if result.exit_code != 0:
        raise ToolError(result.stderr.strip() or f"cannot move {src}")
    return f"Moved {src} to {dst}."


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


# egress: the shell reaches the network (curl, wget), besides deleting anything.
@tool("egress", uses_sandbox=True)
def run_shell(world: World, command: str) -> str:
    """Run a shell command in the user's workstation and return its output.

    Args:
        command: The command line to run (POSIX shell syntax).
    """
    if not command.strip():
        raise ToolError("command is empty")
    result = world.sandbox.exec(command)
    parts = []
    if result.stdout:
        parts.append(result.stdout.rstrip("\n"))
    if result.stderr:
        parts.append(result.stderr.rstrip("\n"))
    if result.timed_out:
        parts.append("[command timed out]")
    if result.truncated:
        parts.append("[output cut at the output limit]")
    parts.append(f"[exit code {result.exit_code}]")
    return _cap("\n".join(parts))
