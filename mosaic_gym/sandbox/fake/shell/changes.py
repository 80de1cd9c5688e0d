"""Commands that change the tree: rm, rmdir, mv, cp, mkdir, touch, chmod, tee.

Each change goes through a FakeSandbox method, which checks permissions and bumps
the sandbox's version. GNU coreutils wording for errors.
"""

from __future__ import annotations

import errno
import posixpath
import re
from typing import TYPE_CHECKING

from mosaic_gym.sandbox.base import FileEntry
from mosaic_gym.sandbox.fake.shell.limits import MAX_PATH_CHARS
from mosaic_gym.sandbox.fake.shell.streams import (
    BYTE_COST_S,
    CommandFn,
    StreamIO,
    UsageError,
    describe,
    parse_options,
)

if TYPE_CHECKING:
    from mosaic_gym.sandbox.fake.shell.interpreter import Shell

_SYMBOLIC = re.compile(r"([ugoa]*)([-+=])([rwxXst]*)")
_PERMS = {"r": 0o444, "w": 0o222, "x": 0o111, "X": 0o111, "s": 0o6000, "t": 0o1000}
_WHO = {"u": 0o4700, "g": 0o2070, "o": 0o1007, "a": 0o7777}


def rm(shell: Shell, argv: list[str], io: StreamIO) -> int:
    long_names = {
        "--recursive": "r", "--force": "f", "--dir": "d", "--verbose": "v",
        "--no-preserve-root": "N", "--preserve-root": "P",
    }  # fmt: skip
    options = parse_options(argv[1:], "rRfidvI", long=long_names)
    recursive = "r" in options or "R" in options
    if not options.operands and "f" not in options:
        raise UsageError("missing operand")
    status = 0
    for operand in options.operands:
        path = shell.resolve(operand)
        if posixpath.basename(operand.rstrip("/")) in (".", ".."):
            io.error(f"rm: refusing to remove '.' or '..' directory: skipping '{operand}'")
            status = 1
            continue
        if path == "/" and recursive and "N" not in options:
            io.error("rm: it is dangerous to operate recursively on '/'")
            io.error("rm: use --no-preserve-root to override this failsafe")
            status = 1
            continue
        try:
            entry = shell.sandbox.stat(path)
            if entry.is_dir and not recursive:
                if "d" not in options:
                    raise IsADirectoryError(errno.EISDIR, "Is a directory", operand)
                if shell.sandbox.list_dir(path):
                    raise OSError(errno.ENOTEMPTY, "Directory not empty", operand)
            if path == "/":
                for child in shell.sandbox.list_dir("/"):
                    shell.sandbox.delete(child.path, recursive=True)
            else:
                shell.sandbox.delete(path, recursive=True)
            if "v" in options:
                io.write(f"removed '{operand}'\n")
        except OSError as exc:
            if "f" in options and isinstance(exc, FileNotFoundError):
                continue
            io.error(f"rm: cannot remove '{operand}': {describe(exc)}")
            status = 1
    return status


def rmdir(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(argv[1:], "pv", long={"--parents": "p"})
    if not options.operands:
        raise UsageError("missing operand")
    status = 0
    for operand in options.operands:
        path = shell.resolve(operand)
        try:
            if not shell.sandbox.stat(path).is_dir:
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory", operand)
            if shell.sandbox.list_dir(path):
                raise OSError(errno.ENOTEMPTY, "Directory not empty", operand)
            shell.sandbox.delete(path)
        except OSError as exc:
            io.error(f"rmdir: failed to remove '{operand}': {describe(exc)}")
            status = 1
    return status


def _destination(
    shell: Shell, name: str, operands: list[str]
) -> tuple[list[tuple[str, str, str]], str]:
    """``(operand, source path, destination path)`` per source, and the target operand.

    An existing directory as target receives each source under its own name.
    """
    if not operands:
        raise UsageError("missing file operand")
    if len(operands) == 1:
        raise UsageError(f"missing destination file operand after '{operands[0]}'")
    *sources, target = operands
    path = shell.resolve(target)
    is_dir = shell.sandbox.exists(path) and shell.sandbox.stat(path).is_dir
    if len(sources) > 1 and not is_dir:
        raise UsageError(f"target '{target}' is not a directory")
    moves = []
    for source in sources:
        src = shell.resolve(source)
        moves.append((source, src, posixpath.join(path, posixpath.basename(src)) if is_dir
                      else path))
    return moves, target


def mv(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(argv[1:], "finvuT", long={"--force": "f", "--verbose": "v"})
    moves, target = _destination(shell, "mv", options.operands)
    status = 0
    for source, src, dst in moves:
        try:
            shell.sandbox.stat(src)
        except OSError as exc:
            io.error(f"mv: cannot stat '{source}': {describe(exc)}")
            status = 1
            continue
        if src == dst:
            io.error(f"mv: '{source}' and '{target}' are the same file")
            status = 1
            continue
        if "n" in options and shell.sandbox.exists(dst):
            continue
        try:
            shell.sandbox.rename(src, dst)
        except OSError as exc:
            io.error(f"mv: cannot move '{source}' to '{target}': {describe(exc)}")
            status = 1
    return status


def cp(shell: Shell, argv: list[str], io: StreamIO) -> int:
    long_names = {"--recursive": "r", "--archive": "a", "--force": "f", "--verbose": "v"}
    options = parse_options(argv[1:], "rRapfvniuTdL", long=long_names)
    recursive = bool({"r", "R", "a"} & options.flags)
    keep_mode = bool({"p", "a"} & options.flags)
    moves, target = _destination(shell, "cp", options.operands)
    status = 0
    for source, src, dst in moves:
        if src in _DEVICES or dst in _DEVICES:
            status |= _copy_device(shell, io, source, src, dst)
            continue
        try:
            entry = shell.sandbox.stat(src)
        except OSError as exc:
            io.error(f"cp: cannot stat '{source}': {describe(exc)}")
            status = 1
            continue
        if entry.is_dir and not recursive:
            io.error(f"cp: -r not specified; omitting directory '{source}'")
            status = 1
            continue
        if entry.is_dir and (dst == src or dst.startswith(src.rstrip("/") + "/")):
            io.error(f"cp: cannot copy a directory, '{source}', into itself, '{target}'")
            status = 1
            continue
        if not entry.is_dir and dst == src:
            io.error(f"cp: '{source}' and '{target}' are the same file")
            status = 1
            continue
        status |= _copy_tree(shell, io, entry, dst, keep_mode, "n" in options)
    return status


#: Device files ``cp`` may read or write: reading gives nothing, writing discards.
_DEVICES = frozenset({"/dev/null", "/dev/zero", "/dev/stdout", "/dev/stderr", "/dev/tty"})


def _copy_device(shell: Shell, io: StreamIO, source: str, src: str, dst: str) -> int:
    """``cp /dev/null FILE`` truncates FILE; ``cp FILE /dev/null`` reads and discards."""
    if src == "/dev/zero":
        io.error("cp: copying from /dev/zero never ends; refused in the sandbox")
        return 1
    try:
        data = b"" if src in _DEVICES else shell.read_path(source)
        if dst in ("/dev/stdout", "/dev/tty"):
            io.write(data)
        elif dst not in _DEVICES:
            if shell.sandbox.exists(dst) and shell.sandbox.stat(dst).is_dir:
                dst = posixpath.join(dst, posixpath.basename(src))
            shell.sandbox.write_file(dst, data)
    except OSError as exc:
        io.error(f"cp: cannot create regular file '{dst}': {describe(exc)}")
        return 1
    return 0


def _copy_tree(
    shell: Shell, io: StreamIO, root: FileEntry, dst_root: str, keep_mode: bool, no_clobber: bool
) -> int:
    """Copy a file or a whole directory (listed up front, so copies are never re-copied)."""
    status = 0
    pending = [(root, dst_root)]
    while pending:
        entry, dst = pending.pop()
        mode = entry.mode if keep_mode else entry.mode & ~0o022
        try:
            if entry.is_dir:
                if not shell.sandbox.exists(dst):
                    shell.sandbox.make_dir(dst, mode=mode | 0o700)
                children = shell.sandbox.list_dir(entry.path)
                pending.extend((child, posixpath.join(dst, child.name)) for child in children)
                continue
            if no_clobber and shell.sandbox.exists(dst):
                continue
            data = shell.sandbox.read_file(entry.path)
            shell.budget.charge(len(data) * BYTE_COST_S)
            new = not shell.sandbox.exists(dst)
            shell.sandbox.write_file(dst, data, mode=mode if new or keep_mode else None)
        except OSError as exc:
            io.error(f"cp: cannot copy '{entry.path}' to '{dst}': {describe(exc)}")
            status = 1
    return status


def mkdir(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(argv[1:], "pv", "m", {"--parents": "p", "--mode": "m"})
    mode = parse_mode(options.value("m") or "755", 0o777, True) if "m" in options else 0o755
    if not options.operands:
        raise UsageError("missing operand")
    status = 0
    for operand in options.operands:
        path = shell.resolve(operand)
        try:
            if "p" not in options:
                shell.sandbox.make_dir(path, mode=mode)
                continue
            if len(path) > MAX_PATH_CHARS:  # refused whole, before 20,000 lookups
                raise OSError(errno.ENAMETOOLONG, "File name too long", operand)
            current = ""
            for part in path.strip("/").split("/") if path != "/" else []:
                current += "/" + part
                if not shell.sandbox.exists(current):
                    shell.sandbox.make_dir(current, mode=mode)
                elif not shell.sandbox.stat(current).is_dir:
                    raise FileExistsError(errno.EEXIST, "File exists", operand)
        except OSError as exc:
            io.error(f"mkdir: cannot create directory '{operand}': {describe(exc)}")
            status = 1
    return status


def touch(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(argv[1:], "acmh", "dtr", {"--no-create": "c"})
    if not options.operands:
        raise UsageError("missing file operand")
    status = 0
    for operand in options.operands:
        path = shell.resolve(operand)
        if "c" in options and not shell.sandbox.exists(path):
            continue
        try:
            shell.sandbox.touch(path)
        except OSError as exc:
            io.error(f"touch: cannot touch '{operand}': {describe(exc)}")
            status = 1
    return status


def parse_mode(text: str, current: int, is_dir: bool) -> int:
    """An octal (``755``) or symbolic (``u+x,go-w``, ``+x``, ``a=r``) mode applied to
    ``current``. Raises UsageError("invalid mode")."""
    if re.fullmatch(r"[0-7]{1,4}", text):
        return int(text, 8)
    mode = current
    for clause in text.split(","):
        match = _SYMBOLIC.fullmatch(clause)
        if match is None:
            raise UsageError(f"invalid mode: '{text}'")
        who_letters, op, perms = match.groups()
        who = 0
        for letter in who_letters or "a":
            who |= _WHO[letter]
        bits = 0
        for letter in perms:
            if letter != "X" or is_dir or mode & 0o111:
                bits |= _PERMS[letter]
        bits &= who
        if op == "+":
            mode |= bits
        elif op == "-":
            mode &= ~bits
        else:
            mode = (mode & ~(who & 0o777)) | bits
    return mode & 0o7777


def chmod(shell: Shell, argv: list[str], io: StreamIO) -> int:
    recursive, mode_text, operands = False, None, []
    for arg in argv[1:]:
        if arg in ("-R", "--recursive"):
            recursive = True
        elif arg in ("-v", "-f", "-c", "--verbose", "--silent", "--quiet"):
            continue
        elif mode_text is None:
            mode_text = arg
        else:
            operands.append(arg)
    if mode_text is None or not operands:
        raise UsageError(f"missing operand{' after ' + repr(mode_text) if mode_text else ''}")
    parse_mode(mode_text, 0o644, False)  # validate before touching anything
    status = 0
    for operand in operands:
        pending = [shell.resolve(operand)]
        while pending:
            path = pending.pop()
            try:
                entry = shell.sandbox.stat(path)
                shell.sandbox.chmod(path, parse_mode(mode_text, entry.mode, entry.is_dir))
                if recursive and entry.is_dir:
                    pending.extend(child.path for child in shell.sandbox.list_dir(path))
            except OSError as exc:
                shown = operand if path == shell.resolve(operand) else path
                verb = "access" if isinstance(exc, FileNotFoundError) else "change mode of"
                io.error(f"chmod: cannot {verb} '{shown}': {describe(exc)}")
                status = 1
    return status


def tee(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(argv[1:], "ai", long={"--append": "a"})
    io.write(io.stdin)
    status = 0
    for operand in options.operands:
        try:
            shell.write_path(operand, io.stdin, io, append="a" in options)
        except OSError as exc:
            io.error(f"tee: {operand}: {describe(exc)}")
            status = 1
    return status


COMMANDS: dict[str, CommandFn] = {
    "rm": rm,
    "rmdir": rmdir,
    "mv": mv,
    "cp": cp,
    "mkdir": mkdir,
    "touch": touch,
    "chmod": chmod,
    "tee": tee,
}
