"""Archives and compression over the fake tree: ``tar``, ``gzip``, ``gunzip``, ``zcat``.

The formats are the real ones (Python's :mod:`tarfile`, ustar/GNU headers, and
:mod:`zlib` gzip streams), so an archive made in the fake sandbox opens with the real
``tar``/``gunzip`` and the other way round. Everything is in memory: archives are read
with the sandbox's ``read_file`` and written with ``write_file``/``make_dir``, so the
sandbox sees (and the judge diffs) every file an extraction creates.

Bounded: decompression stops with a resource limit past
:data:`~mosaic_gym.sandbox.fake.shell.limits.MAX_DECOMPRESSED_BYTES` (a gzip bomb costs
at most that much memory), an archive's members together may not extract to more than
that either (a tar bomb), the tree's own entry bound applies to what is extracted, and
every byte moved is charged to the virtual clock.

``tar``: ``c``/``x``/``t`` with ``-f FILE`` (``-`` for stdin/stdout), ``-z``, ``-v``,
``-C DIR``, ``-O``, ``-k``, ``--strip-components N``, ``--exclude PATTERN``; the old
dash-less form (``tar czf a.tgz dir``) too. As in busybox (the docker image's tar), a
compressed archive needs ``-z`` (or ``-a``) to be read, and any failure exits 1.
Leading ``/`` is stripped from member names and members with ``..`` are skipped, as GNU
tar does. ``gzip``: ``-c``, ``-d``, ``-k``, ``-f``, ``-1``..``-9``; ``gunzip`` is
``gzip -d``, ``zcat`` is ``gzip -dc``.
"""

from __future__ import annotations

import errno
import fnmatch
import io as iolib
import posixpath
import stat
import time
import zlib
from typing import TYPE_CHECKING, Any

from mosaic_gym.sandbox.fake.shell.limits import MAX_DECOMPRESSED_BYTES, limit
from mosaic_gym.sandbox.fake.shell.printing import FIXED_NOW
from mosaic_gym.sandbox.fake.shell.streams import (
    BYTE_COST_S,
    MAX_STREAM_BYTES,
    CommandFn,
    StreamIO,
    UsageError,
    describe,
)

if TYPE_CHECKING:
    import tarfile

    from mosaic_gym.sandbox.fake.shell.interpreter import Shell


def _tarfile() -> Any:
    """:mod:`tarfile`, imported on first use (it costs import time nobody else pays)."""
    import tarfile

    return tarfile

GZIP_MAGIC = b"\x1f\x8b"
#: Modification time written into archives (the fake tree keeps none): the fixed "now".
MTIME = int(FIXED_NOW.timestamp())
_CHUNK = 1 << 20


def gunzip_bytes(shell: Shell, data: bytes) -> bytes:
    """Decompress a (possibly multi-member) gzip stream, bounded; raises ValueError."""
    out = bytearray()
    while data:
        decompressor = zlib.decompressobj(wbits=31)
        pending = data
        while True:
            room = MAX_DECOMPRESSED_BYTES - len(out)
            chunk = decompressor.decompress(pending, min(_CHUNK, room + 1))
            out += chunk
            shell.budget.charge(len(chunk) * BYTE_COST_S)
            if len(out) > MAX_DECOMPRESSED_BYTES:
                raise limit(f"decompressed data exceeds {MAX_DECOMPRESSED_BYTES} bytes")
            pending = decompressor.unconsumed_tail
            if decompressor.eof:
                break
            if not pending and not chunk:
                raise ValueError("unexpected end of file")
        data = decompressor.unused_data.lstrip(b"\0")
        if data and not data.startswith(GZIP_MAGIC):
            break  # trailing garbage: gzip warns and keeps what it decoded
    return bytes(out)


def gzip_bytes(data: bytes, level: int = 6) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def gzip_command(shell: Shell, argv: list[str], io: StreamIO) -> int:
    name = posixpath.basename(argv[0])
    args: list[str] = []
    flags: set[str] = set()
    level = 6
    for arg in argv[1:]:
        if arg.startswith("--"):
            long = {"--stdout": "c", "--to-stdout": "c", "--decompress": "d", "--keep": "k",
                    "--force": "f", "--uncompress": "d", "--quiet": "q", "--verbose": "v",
                    "--test": "t", "--no-name": "n"}  # fmt: skip
            if arg not in long:
                raise UsageError(f"unrecognized option '{arg}'")
            flags.add(long[arg])
        elif arg.startswith("-") and len(arg) > 1 and not args:
            for letter in arg[1:]:
                if letter.isdigit():
                    level = max(1, int(letter))
                elif letter in "cdkfqvtnN":
                    flags.add(letter)
                else:
                    raise UsageError(f"invalid option -- '{letter}'")
        else:
            args.append(arg)
    decompress = "d" in flags or name in ("gunzip", "zcat")
    to_stdout = "c" in flags or name == "zcat" or not args or args == ["-"]
    status = 0
    for operand in args or ["-"]:
        try:
            data = shell.read_path(operand, io.stdin)
        except OSError as exc:
            io.error(f"{name}: {operand}: {describe(exc)}")
            status = 1
            continue
        if operand != "-" and shell.sandbox.stat(shell.resolve(operand)).is_dir:
            io.error(f"{name}: {operand} is a directory -- ignored")
            status = 1
            continue
        if decompress and not to_stdout and not operand.endswith((".gz", ".tgz", ".z")):
            io.error(f"{name}: {operand}: unknown suffix -- ignored")
            status = 1
            continue
        if decompress:
            if not data.startswith(GZIP_MAGIC):
                io.error(f"{name}: {operand}: not in gzip format")
                status = 1
                continue
            try:
                result = gunzip_bytes(shell, data)
            except (ValueError, zlib.error) as exc:
                io.error(f"{name}: {operand}: {exc}")
                status = 1
                continue
        else:
            result = gzip_bytes(data, level)
            shell.budget.charge(len(data) * BYTE_COST_S)
        if "t" in flags:
            continue
        if to_stdout:
            io.write(result)
            continue
        if decompress:
            target = operand[:-4] + ".tar" if operand.endswith(".tgz") else operand.rsplit(
                ".", 1)[0]
        else:
            if operand.endswith(".gz"):
                io.error(f"{name}: {operand} already has .gz suffix -- unchanged")
                status = 1
                continue
            target = operand + ".gz"
        if shell.sandbox.exists(shell.resolve(target)) and "f" not in flags:
            io.error(f"{name}: {target} already exists")
            status = 1
            continue
        mode = shell.sandbox.stat(shell.resolve(operand)).mode
        shell.write_path(target, result, io)
        shell.sandbox.chmod(shell.resolve(target), mode)
        if "k" not in flags:
            shell.sandbox.delete(shell.resolve(operand))
    return status


def _tar_arguments(argv: list[str]) -> list[str]:
    """``tar czf a.tgz dir`` means ``tar -c -z -f a.tgz dir`` (the old, dash-less form)."""
    args = list(argv[1:])
    if args and not args[0].startswith("-"):
        args[0] = "-" + args[0]
    return args


def tar(shell: Shell, argv: list[str], io: StreamIO) -> int:
    args = _tar_arguments(argv)
    mode = ""
    flags: set[str] = set()
    archive: str | None = None
    directory: str | None = None
    strip = 0
    excludes: list[str] = []
    operands: list[str] = []
    index = 0
    long = {"--create": "c", "--extract": "x", "--get": "x", "--list": "t", "--gzip": "z",
            "--gunzip": "z", "--verbose": "v", "--to-stdout": "O", "--keep-old-files": "k",
            "--auto-compress": "a", "--overwrite": "", "--no-same-owner": "",
            "--no-same-permissions": "", "--numeric-owner": ""}  # fmt: skip
    while index < len(args):
        arg = args[index]
        index += 1
        if arg.startswith("--"):
            key, has_value, value = arg.partition("=")
            if key in ("--file", "--directory", "--strip-components", "--exclude"):
                if not has_value:
                    if index >= len(args):
                        raise UsageError(f"option '{key}' requires an argument", 1)
                    value, index = args[index], index + 1
                if key == "--file":
                    archive = value
                elif key == "--directory":
                    directory = value
                elif key == "--exclude":
                    excludes.append(value)
                elif not value.isdigit():
                    raise UsageError(f"invalid number of components: '{value}'", 1)
                else:
                    strip = int(value)
                continue
            if key not in long:
                raise UsageError(f"unrecognized option '{arg}'", 1)
            letter = long[key]
            if letter and letter in "cxt":
                mode = _set_mode(mode, letter)
            elif letter:
                flags.add(letter)
            continue
        if arg.startswith("-") and len(arg) > 1:
            position = 1
            while position < len(arg):
                letter = arg[position]
                position += 1
                if letter in "cxt":
                    mode = _set_mode(mode, letter)
                elif letter in "fC":
                    value = arg[position:]
                    if not value:
                        if index >= len(args):
                            raise UsageError(f"option requires an argument -- '{letter}'", 1)
                        value, index = args[index], index + 1
                    if letter == "f":
                        archive = value
                    else:
                        directory = value
                    break
                elif letter in "zvOkapmoh":
                    flags.add(letter)
                else:
                    raise UsageError(f"invalid option -- '{letter}'", 1)
            continue
        operands.append(arg)
    if not mode:
        raise UsageError("You must specify one of the '-ctx' options", 1)
    base = shell.resolve(directory) if directory else shell.cwd
    if directory and not (shell.sandbox.exists(base) and shell.sandbox.stat(base).is_dir):
        io.error(f"tar: {directory}: Cannot open: No such file or directory")
        return 1
    if mode == "c":
        compress = "z" in flags or ("a" in flags and (archive or "").endswith((".gz", ".tgz")))
        return _create(shell, io, archive, base, operands, compress, "v" in flags, excludes)
    return _read(shell, io, archive, base, operands, mode, flags, strip, excludes)


def _set_mode(mode: str, letter: str) -> str:
    if mode and mode != letter:
        raise UsageError("You may not specify more than one '-ctx' option", 1)
    return letter


def _create(
    shell: Shell, io: StreamIO, archive: str | None, base: str, operands: list[str],
    compress: bool, verbose: bool, excludes: list[str],
) -> int:
    if not operands:
        io.error("tar: Cowardly refusing to create an empty archive")
        return 1
    tarfile = _tarfile()
    buffer = iolib.BytesIO()
    status = 0
    total = 0
    listing = io if archive not in (None, "-") else None
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as writer:
        for operand in operands:
            root = posixpath.normpath(posixpath.join(base, operand))
            try:
                shell.sandbox.stat(root)
            except OSError as exc:
                io.error(f"tar: {operand}: Cannot stat: {describe(exc)}")
                status = 1
                continue
            shown_root = operand.lstrip("/") or "."
            if operand.startswith("/") and shown_root != ".":
                io.error("tar: Removing leading `/' from member names")
            pending = [(root, posixpath.normpath(shown_root))]
            while pending:
                path, shown = pending.pop(0)
                if any(fnmatch.fnmatchcase(posixpath.basename(shown), p) for p in excludes):
                    continue
                entry = shell.sandbox.stat(path)
                info = tarfile.TarInfo(shown + ("/" if entry.is_dir else ""))
                info.mode = entry.mode & 0o7777
                info.uid = info.gid = 1000
                info.uname = info.gname = "user"
                info.mtime = MTIME
                if verbose and listing is not None:
                    listing.write(info.name + "\n")
                elif verbose:
                    io.error(info.name)
                if entry.is_dir:
                    info.type = tarfile.DIRTYPE
                    writer.addfile(info)
                    children = sorted(shell.sandbox.list_dir(path), key=lambda e: e.name)
                    pending[:0] = [(c.path, posixpath.join(shown, c.name)) for c in children]
                    continue
                try:
                    data = shell.read_path(path)
                except OSError as exc:
                    io.error(f"tar: {shown}: Cannot open: {describe(exc)}")
                    status = 1
                    continue
                total += len(data)
                if total > MAX_STREAM_BYTES:
                    raise limit(f"archive exceeds {MAX_STREAM_BYTES} bytes")
                info.size = len(data)
                writer.addfile(info, iolib.BytesIO(data))
    payload = buffer.getvalue()
    if compress:
        payload = gzip_bytes(payload)
    if archive in (None, "-"):
        io.write(payload)
    else:
        try:
            shell.write_path(archive, payload, io)
        except OSError as exc:
            io.error(f"tar: {archive}: Cannot open: {describe(exc)}")
            return 1
    return status


def _read(
    shell: Shell, io: StreamIO, archive: str | None, base: str, operands: list[str],
    mode: str, flags: set[str], strip: int, excludes: list[str],
) -> int:
    tarfile = _tarfile()
    try:
        data = shell.read_path(archive or "-", io.stdin)
    except OSError as exc:
        io.error(f"tar: {archive}: Cannot open: {describe(exc)}")
        return 1
    if data.startswith(GZIP_MAGIC) and not ({"z", "a"} & flags):
        # busybox tar (the docker image's) does not guess: without -z it fails.
        io.error("tar: short read (gzip-compressed archive: use -z)")
        return 1
    if data.startswith(GZIP_MAGIC):
        try:
            data = gunzip_bytes(shell, data)
        except (ValueError, zlib.error):
            io.error("tar: invalid gzip data")
            return 1
    try:
        # In memory: nothing to close, and members are read after the loop starts.
        reader = tarfile.open(fileobj=iolib.BytesIO(data), mode="r:")  # noqa: SIM115
        members = reader.getmembers()
    except (tarfile.TarError, EOFError, ValueError):
        if not data:
            return 0
        io.error("tar: This does not look like a tar archive")
        return 1
    status = 0
    extracted = 0
    wanted = [operand.rstrip("/") for operand in operands]
    found: set[str] = set()
    for member in members:
        name = member.name.rstrip("/")
        if wanted:
            hit = next((w for w in wanted if name == w or name.startswith(w + "/")), None)
            if hit is None:
                continue
            found.add(hit)
        if any(fnmatch.fnmatchcase(posixpath.basename(name), p) for p in excludes):
            continue
        shown = member.name + ("/" if member.isdir() else "")
        if mode == "t":
            io.write(_long_listing(member, shown) if "v" in flags else shown + "\n")
            continue
        shell.budget.charge(member.size * BYTE_COST_S)
        if "v" in flags and "O" in flags:
            io.error(shown)
        elif "v" in flags:
            io.write(shown + "\n")
        parts = [part for part in name.lstrip("/").split("/") if part not in ("", ".")]
        if ".." in parts:
            io.error(f"tar: {member.name}: Member name contains '..'")
            status = 1
            continue
        parts = parts[strip:]
        if not parts:
            continue
        if not (member.isfile() or member.isdir()):
            io.error(f"tar: {member.name}: member type not supported in the sandbox; skipped")
            continue
        extracted += member.size
        if extracted > MAX_DECOMPRESSED_BYTES:
            raise limit(f"extracted data exceeds {MAX_DECOMPRESSED_BYTES} bytes")
        content = b""
        if member.isfile():
            handle = reader.extractfile(member)
            content = handle.read() if handle is not None else b""
        if "O" in flags:
            io.write(content)
            continue
        target = posixpath.join(base, *parts)
        try:
            _extract(shell, target, member, content, "k" in flags)
        except OSError as exc:
            io.error(f"tar: {'/'.join(parts)}: Cannot open: {describe(exc)}")
            status = 1
            if exc.errno == errno.ENOSPC:  # the tree is full: the rest would fail alike
                break
    for operand in wanted:
        if operand not in found:
            io.error(f"tar: {operand}: Not found in archive")
            status = 1
    return status


def _extract(shell: Shell, target: str, member: tarfile.TarInfo, content: bytes,
             keep: bool) -> None:
    sandbox = shell.sandbox
    current = ""
    for part in posixpath.dirname(target).strip("/").split("/"):
        if not part:
            continue
        current += "/" + part
        if not sandbox.exists(current):
            sandbox.make_dir(current)
    mode = member.mode & 0o7777
    if member.isdir():
        if not sandbox.exists(target):
            sandbox.make_dir(target, mode=mode | 0o700)
        return
    if sandbox.exists(target):
        if keep:
            return
        if sandbox.stat(target).is_dir:
            raise IsADirectoryError(21, "Is a directory", target)
    sandbox.write_file(target, content, mode=mode)


def _long_listing(member: tarfile.TarInfo, shown: str) -> str:
    """One ``tar -tv`` line, as busybox prints it."""
    kind = "d" if member.isdir() else "-"
    when = time.gmtime(member.mtime)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", when)
    owner = f"{member.uname or member.uid}/{member.gname or member.gid}"
    size = 0 if member.isdir() else member.size
    return f"{kind}{stat.filemode(member.mode)[1:]} {owner} {size:9d} {stamp} {shown}\n"


COMMANDS: dict[str, CommandFn] = {
    "tar": tar,
    "gzip": gzip_command,
    "gunzip": gzip_command,
    "zcat": gzip_command,
}
