"""Pure helpers of the docker backend: turn ``FileSpec`` lists into the script that
materialises them, and parse what the in-container snapshot prints.

Nothing here talks to Docker, so all of it is unit-testable without an engine.
"""

from __future__ import annotations

import base64
import codecs
import errno
import io
import os
import posixpath
import shlex
import stat
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from mosaic_gym.sandbox.base import FileEntry, FileSpec, FileState, content_hash

#: Where the image keeps its pristine /etc (copied into the /etc tmpfs on setup).
SKELETON_ETC = "/usr/share/mosaic-gym/skel/etc"
#: The sandbox user; every file the world holds belongs to it.
UID = 1000
DEFAULT_DIR_MODE = 0o755


def _error(code: int, path: str, detail: str | None = None) -> OSError:
    return OSError(code, detail or os.strerror(code), path)


def normalize(path: str, base: str) -> str:
    """An absolute, normalised path (relative paths resolve against ``base``).

    Raises FileNotFoundError for ``""`` and OSError EINVAL for a NUL byte, like the fake.
    """
    if not isinstance(path, str):
        raise TypeError(f"path must be str, not {type(path).__name__}")
    if not path:
        raise _error(errno.ENOENT, path)
    if "\x00" in path:
        raise _error(errno.EINVAL, path)
    joined = posixpath.normpath(posixpath.join(base, path))
    return "/" + joined.lstrip("/")


def under(path: str, roots: Iterable[str]) -> str | None:
    """The root ``path`` lies strictly below, or ``None``."""
    return next((root for root in roots if path.startswith(root.rstrip("/") + "/")), None)


@dataclass(frozen=True)
class WorldPlan:
    """How to materialise a list of specs, and what the work roots must hold afterwards."""

    #: base64 of a tar of every entry below the roots (empty when there is none).
    archive: str
    #: ``chmod`` commands to run after extraction (directory modes, root modes).
    chmods: tuple[tuple[int, str], ...]
    #: The states the specs imply, by path (roots included when a spec sets their mode).
    states: Mapping[str, FileState]


def plan_world(specs: Sequence[FileSpec], roots: Sequence[str]) -> WorldPlan:
    """Check ``specs`` against each other (as the fake backend does) and plan them.

    Raises ValueError (relative path), NotADirectoryError / IsADirectoryError
    (specs contradict each other) and PermissionError (a path outside the
    writable roots: the rest of a docker sandbox is read-only).
    """
    nodes: dict[str, FileSpec] = {}
    root_modes: dict[str, int] = {}
    for spec in specs:
        if not spec.path.startswith("/"):
            raise ValueError(f"FileSpec path must be absolute: {spec.path!r}")
        path = normalize(spec.path, "/")
        if path in roots:
            if not spec.is_dir:
                raise _error(errno.EISDIR, spec.path)
            root_modes[path] = stat.S_IMODE(spec.mode)
            continue
        root = under(path, roots)
        if root is None:
            raise PermissionError(
                errno.EROFS,
                f"Read-only file system (docker sandboxes write only under {', '.join(roots)})",
                spec.path,
            )
        parent = posixpath.dirname(path)
        while parent != root:
            existing = nodes.get(parent)
            if existing is not None and not existing.is_dir:
                raise _error(errno.ENOTDIR, spec.path)
            if existing is None:
                nodes[parent] = FileSpec(parent, is_dir=True, mode=DEFAULT_DIR_MODE)
            parent = posixpath.dirname(parent)
        existing = nodes.get(path)
        if spec.is_dir:
            if existing is not None and not existing.is_dir:
                raise _error(errno.ENOTDIR, spec.path)
        elif existing is not None and existing.is_dir:
            raise _error(errno.EISDIR, spec.path)
        nodes[path] = FileSpec(path, bytes(spec.content), stat.S_IMODE(spec.mode), spec.is_dir)
    return WorldPlan(_archive(nodes), _chmods(nodes, root_modes), _states(nodes, root_modes))


def _archive(nodes: Mapping[str, FileSpec]) -> str:
    if not nodes:
        return ""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(nodes):
            spec = nodes[path]
            info = tarfile.TarInfo(path.lstrip("/"))
            info.uid = info.gid = UID
            info.mtime = 0
            if spec.is_dir:
                info.type = tarfile.DIRTYPE
                info.mode = spec.mode | 0o700  # children first; the real mode comes last
                tar.addfile(info)
            else:
                info.mode = spec.mode
                info.size = len(spec.content)
                tar.addfile(info, io.BytesIO(spec.content))
    return base64.encodebytes(buffer.getvalue()).decode("ascii")


def _chmods(
    nodes: Mapping[str, FileSpec], root_modes: Mapping[str, int]
) -> tuple[tuple[int, str], ...]:
    late = [(spec.mode, path) for path, spec in nodes.items()
            if spec.is_dir and spec.mode != spec.mode | 0o700]  # fmt: skip
    # Deepest first, so a parent never loses its write bit before its children are done.
    late.sort(key=lambda item: item[1].count("/"), reverse=True)
    return tuple(late + sorted((mode, path) for path, mode in root_modes.items()))


def _states(nodes: Mapping[str, FileSpec], root_modes: Mapping[str, int]) -> dict[str, FileState]:
    states = {
        path: FileState(True, spec.mode, 0, None)
        if spec.is_dir
        else FileState(False, spec.mode, len(spec.content), content_hash(spec.content))
        for path, spec in nodes.items()
    }
    for path, mode in root_modes.items():
        states[path] = FileState(True, mode, 0, None)
    return states


def materialise_script(plan: WorldPlan, roots: Sequence[str], token: str) -> str:
    """Shell that empties the roots, lays the world down and prints a snapshot."""
    quoted_roots = " ".join(shlex.quote(root) for root in roots)
    owned = " ".join(shlex.quote(root) for root in roots if root != "/tmp")
    lines = [
        f"__mosaic_wipe {quoted_roots} &&",
        f"{{ [ ! -d {SKELETON_ETC} ] || cp -a {SKELETON_ETC}/. /etc/; }} &&",
        f"chmod 755 {owned} &&",
    ]
    if plan.archive:
        delimiter = f"MOSAIC_WORLD_{token}"
        lines.append(f"(umask 0; base64 -d | tar -x -o -f - -C /) <<'{delimiter}' &&")
        lines.append(plan.archive.rstrip("\n"))
        lines.append(delimiter)
    for mode, path in plan.chmods:
        lines.append(f"chmod {mode:o} {shlex.quote(path)} &&")
    lines.append(f"__mosaic_snapshot {token} {quoted_roots}")
    return "\n".join(lines)


@dataclass(frozen=True)
class ParsedSnapshot:
    states: dict[str, FileState]
    #: Paths whose mode the snapshot relaxed to read them, with the mode to restore.
    relaxed: dict[str, int]


def parse_snapshot(output: bytes, token: str, excluded: frozenset[str]) -> ParsedSnapshot:
    """Parse ``__mosaic_snapshot``'s output. Raises ValueError when it is inconsistent."""
    marker = token.encode()
    records = output.split(marker)
    if records and records[0].strip():
        raise ValueError(f"unexpected snapshot output {records[0][:200]!r}")
    relaxed: dict[str, int] = {}
    stats: list[tuple[str, int, int]] = []
    links: dict[str, bytes] = {}
    hashes_block = b""
    for record in records[1:]:
        kind, body = record[:1], record[1:]
        if kind == b"H":
            hashes_block = body[1:] if body.startswith(b"\n") else body
            continue
        if not body.endswith(b"\n"):
            raise ValueError(f"truncated snapshot record {record[:200]!r}")
        body = body[:-1]
        if kind == b"F":
            octal, _, name = body.partition(b" ")
            relaxed[_decode(name)] = int(octal, 8)
        elif kind == b"S":
            hex_mode, size_text, name = body.split(b" ", 2)
            stats.append((_decode(name), int(hex_mode, 16), int(size_text)))
        elif kind == b"L":
            links.update(_parse_link(body))
        else:
            raise ValueError(f"unknown snapshot record {record[:200]!r}")
    hashes = _parse_hashes(hashes_block, [path for path, st, _ in stats if stat.S_ISREG(st)])
    states: dict[str, FileState] = {}
    for path, st_mode, size in stats:
        if path in excluded:
            continue
        mode = relaxed.get(path, stat.S_IMODE(st_mode))
        if stat.S_ISDIR(st_mode):
            states[path] = FileState(True, mode, 0, None)
        elif stat.S_ISREG(st_mode):
            states[path] = FileState(False, mode, size, hashes[path])
        elif stat.S_ISLNK(st_mode):
            target = links.get(path, b"")  # recorded by its target, never followed
            states[path] = FileState(False, mode, len(target), content_hash(target))
        else:  # fifos, sockets, devices: recorded by type, never opened
            kind = f"\0special\0{stat.S_IFMT(st_mode):o}".encode()
            states[path] = FileState(False, mode, 0, content_hash(kind))
    return ParsedSnapshot(states, relaxed)


def _decode(name: bytes) -> str:
    return name.decode("utf-8", "surrogateescape")


def _parse_hashes(block: bytes, files: list[str]) -> dict[str, str]:
    """``sha256sum`` lines, in the order ``find`` listed ``files`` (names may hold newlines)."""
    hashes: dict[str, str] = {}
    offset = 0
    for path in files:
        name = path.encode("utf-8", "surrogateescape")
        digest = block[offset : offset + 64]
        tail = b"  " + name + b"\n"
        if len(digest) != 64 or block[offset + 64 : offset + 64 + len(tail)] != tail:
            raise ValueError(f"snapshot hashes out of step at {path!r}")
        hashes[path] = digest.decode("ascii")
        offset += 64 + len(tail)
    if block[offset:].strip():
        raise ValueError("snapshot hashes has unexpected trailing lines")
    return hashes


def _parse_link(body: bytes) -> dict[str, bytes]:
    """busybox ``stat -c %N`` of a symlink: ``'name' -> 'target'``."""
    head, separator, target = body.partition(b"' -> '")
    if not separator or not head.startswith(b"'") or not target.endswith(b"'"):
        return {}
    return {_decode(head[1:]): target[:-1]}


def parse_listing(output: bytes, token: str) -> list[FileEntry]:
    """``__mosaic_list`` records (``<token><hex mode> <size> <path>``), sorted by name."""
    entries: list[FileEntry] = []
    for record in output.split(token.encode())[1:]:
        hex_mode, size, name = record.rstrip(b"\n").split(b" ", 2)
        st_mode = int(hex_mode, 16)
        path = _decode(name)
        is_dir = stat.S_ISDIR(st_mode)
        size_shown = 0 if is_dir else int(size)
        entries.append(
            FileEntry(posixpath.basename(path), path, is_dir, size_shown, st_mode & 0o7777)
        )
    return sorted(entries, key=lambda entry: entry.name)


#: Exit statuses of the shell helpers, as errno values.
_ERRNO_BY_STATUS = {
    2: errno.ENOENT, 5: errno.EIO, 13: errno.EACCES, 20: errno.ENOTDIR, 21: errno.EISDIR,
    22: errno.EINVAL, 27: errno.EFBIG, 28: errno.ENOSPC, 30: errno.EROFS,
}  # fmt: skip
#: Status 28 means "writing failed"; the shell's message says why.
_WRITE_FAILURES = (
    ("No space left", errno.ENOSPC), ("Read-only file system", errno.EROFS),
    ("Permission denied", errno.EACCES), ("Is a directory", errno.EISDIR),
)  # fmt: skip


def file_error(status: int, stderr: bytes, path: str) -> OSError | None:
    """The ``OSError`` a helper's exit status stands for (``None`` for 0 or an unknown status)."""
    code = _ERRNO_BY_STATUS.get(status)
    if status == 0 or code is None:
        return None
    message = stderr.decode("utf-8", "replace")
    if code == errno.ENOSPC:
        code = next((c for text, c in _WRITE_FAILURES if text in message), errno.EIO)
    if code == errno.EROFS:  # the rest of the sandbox is read-only: a permission matter
        return PermissionError(code, os.strerror(code), path)
    return OSError(code, os.strerror(code), path)


def decode_capped(data: bytes, cap: int) -> tuple[str, bool]:
    """At most ``cap`` bytes as text, never cutting a UTF-8 character in two."""
    if len(data) <= cap:
        return data.decode("utf-8", "replace"), False
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    return decoder.decode(data[:cap], final=False), True


def describe_mismatch(expected: Mapping[str, FileState], found: Mapping[str, FileState]) -> str:
    """A short account of how two snapshots differ (for error messages)."""
    paths = sorted(set(expected) ^ set(found)) + sorted(
        p for p in set(expected) & set(found) if expected[p] != found[p]
    )
    shown = ", ".join(f"{p}: expected {expected.get(p)}, found {found.get(p)}" for p in paths[:5])
    return f"{len(paths)} path(s) differ: {shown}"
