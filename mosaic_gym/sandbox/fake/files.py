"""File operations of the fake sandbox, with the permission model, over pyfakefs nodes.

The agent is a non-root user who owns every file:

* reading a file or listing a directory needs the owner-read bit;
* overwriting or appending to a file needs the owner-write bit on the file;
* creating, deleting or renaming an entry needs the owner-write bit on the
  directory that holds it (a recursive delete needs read+write on every
  non-empty directory below, checked before anything is removed);
* ``chmod`` is always allowed (the user owns the file); the execute bit of a
  directory is not enforced (no "search permission" checks).

The checks live here, not in pyfakefs, whose notion of the user is process-global
(``set_uid``). Nodes are reached through ``FakeDirectory.entries`` and ``add_entry``
only, so pyfakefs's own checks (which depend on the real uid) never decide anything.
Every mutation bumps ``_version`` after its checks pass and before it acts.
"""

from __future__ import annotations

import errno
import posixpath
import stat

from pyfakefs.fake_file import FakeDirectory, FakeFile
from pyfakefs.fake_filesystem import FakeFilesystem

from mosaic_gym.errors import SandboxError
from mosaic_gym.sandbox.base import HOME, FileEntry
from mosaic_gym.sandbox.fake.shell.limits import MAX_PATH_CHARS, MAX_TREE_ENTRIES

DEFAULT_FILE_MODE = 0o644
DEFAULT_DIR_MODE = 0o755
#: Like a container's disk: bounds memory whatever the agent writes.
DEFAULT_DISK_QUOTA = 256 * 1024 * 1024
_R, _W = stat.S_IRUSR, stat.S_IWUSR


def make_error(code: int, path: str) -> OSError:
    """An ``OSError`` subclass with the usual strerror (``OSError`` picks the subclass)."""
    messages = {
        errno.ENOENT: "No such file or directory",
        errno.EACCES: "Permission denied",
        errno.EISDIR: "Is a directory",
        errno.ENOTDIR: "Not a directory",
        errno.EEXIST: "File exists",
        errno.ENOTEMPTY: "Directory not empty",
        errno.EINVAL: "Invalid argument",
        errno.EPERM: "Operation not permitted",
        errno.ENOSPC: "No space left on device",
        errno.ENAMETOOLONG: "File name too long",
    }
    return OSError(code, messages[code], path)


def new_file(name: str, mode: int, data: bytes, fs: FakeFilesystem | None) -> FakeFile:
    """A pyfakefs file node (content set apart: its typing wants name and content alike)."""
    node = FakeFile(name, mode, filesystem=fs)
    node.set_initial_contents(data)
    return node


class FakeFileOperations:
    """The file methods of :class:`~mosaic_gym.sandbox.fake.sandbox.FakeSandbox` (a mixin).

    Relative paths resolve against :data:`HOME`. Errors are the standard ``OSError``
    subclasses with coreutils wording; ``filename`` is the path as given.
    """

    _fs: FakeFilesystem | None
    _version: int
    #: Bytes of file content the tree may hold; writes beyond raise ENOSPC.
    disk_quota: int = DEFAULT_DISK_QUOTA
    #: Bytes of file content the tree holds now.
    _used: int = 0
    #: Entries (files and directories, not ``/``) the tree holds now; bounded by
    #: MAX_TREE_ENTRIES like a file system's inodes, since every snapshot walks them all.
    _entries: int = 0

    def read_file(self, path: str) -> bytes:
        """The content of a file. Raises FileNotFoundError, IsADirectoryError, PermissionError."""
        _, _, node = self._lookup(path)
        if node is None:
            raise make_error(errno.ENOENT, path)
        if isinstance(node, FakeDirectory):
            raise make_error(errno.EISDIR, path)
        if not node.st_mode & _R:
            raise make_error(errno.EACCES, path)
        return node.byte_contents or b""

    def read_file_privileged(self, path: str) -> bytes:
        """The content of a file whatever its mode bits (the judge's read; see
        :meth:`~mosaic_gym.sandbox.base.Sandbox.read_file_privileged`)."""
        _, _, node = self._lookup(path)
        if node is None:
            raise make_error(errno.ENOENT, path)
        if isinstance(node, FakeDirectory):
            raise make_error(errno.EISDIR, path)
        return node.byte_contents or b""

    def write_file(self, path: str, data: bytes, *, mode: int | None = None) -> None:
        """Create (mode 0o644 unless given) or overwrite a file; the parent must exist.

        Raises PermissionError for a file without owner-write or, for a new file, a
        directory without owner-write.
        """
        self._write(path, bytes(data), append=False, mode=mode)

    def append_file(self, path: str, data: bytes) -> None:
        """Append to a file, creating it (0o644) when missing; same errors as write."""
        self._write(path, bytes(data), append=True, mode=None)

    def list_dir(self, path: str) -> list[FileEntry]:
        """Entries of a directory, sorted by name (no ``.``/``..``)."""
        norm = self._normalize(path)
        node = self._node(norm, shown=path)
        if not isinstance(node, FakeDirectory):
            raise make_error(errno.ENOTDIR, path)
        if not node.st_mode & _R:
            raise make_error(errno.EACCES, path)
        return [
            self._entry(posixpath.join(norm, name), node.entries[name])
            for name in sorted(node.entries)
        ]

    def stat(self, path: str) -> FileEntry:
        """Type, size and mode of one path (no permission needed)."""
        norm = self._normalize(path)
        return self._entry(norm, self._node(norm, shown=path))

    def exists(self, path: str) -> bool:
        try:
            return self._lookup(path)[2] is not None
        except OSError:
            return False

    def delete(self, path: str, *, recursive: bool = False) -> None:
        """Remove a file, or a directory when ``recursive`` (or when it is empty).

        Raises FileNotFoundError, IsADirectoryError (non-empty directory without
        ``recursive``), PermissionError (see the module docstring; ``/`` itself
        can never be removed).
        """
        parent, name, node = self._lookup(path)
        if node is None:
            raise make_error(errno.ENOENT, path)
        if parent is None:
            raise make_error(errno.EPERM, path)
        if isinstance(node, FakeDirectory) and node.entries and not recursive:
            raise make_error(errno.EISDIR, path)
        self._check_dir_writable(parent, path)
        if isinstance(node, FakeDirectory):
            self._check_removable(node, path)
        self._version += 1
        del parent.entries[name]
        self._used -= self._size_of(node)
        self._entries -= self._count_of(node)

    def make_dir(self, path: str, *, mode: int = DEFAULT_DIR_MODE) -> None:
        """Create one directory. Raises FileExistsError, FileNotFoundError, PermissionError."""
        parent, name, node = self._lookup(path)
        if node is not None or parent is None:
            raise make_error(errno.EEXIST, path)
        self._check_dir_writable(parent, path)
        self._admit_entry(path)
        self._version += 1
        parent.add_entry(FakeDirectory(name, stat.S_IMODE(mode), self._fs))

    def touch(self, path: str) -> None:
        """Create an empty file if missing; an existing one only bumps :attr:`version`
        (times are not modelled). Same errors as :meth:`write_file` for a new file."""
        _, _, node = self._lookup(path)
        if node is None:
            self.write_file(path, b"")
        else:
            self._version += 1

    def chmod(self, path: str, mode: int) -> None:
        """Set the permission bits (the user owns every file, so this always may)."""
        _, _, node = self._lookup(path)
        if node is None:
            raise make_error(errno.ENOENT, path)
        self._version += 1
        node.st_mode = stat.S_IFMT(node.st_mode) | stat.S_IMODE(mode)

    def rename(self, source: str, target: str) -> None:
        """POSIX ``rename``: replace a file target, or an empty directory target.

        Raises FileNotFoundError, PermissionError (either directory not writable),
        IsADirectoryError / NotADirectoryError (type mismatch), OSError ENOTEMPTY
        or EINVAL (a directory moved into itself).
        """
        src_parent, src_name, node = self._lookup(source)
        if node is None:
            raise make_error(errno.ENOENT, source)
        dst_parent, dst_name, existing = self._lookup(target)
        if src_parent is None or dst_parent is None:
            raise make_error(errno.EINVAL, source)
        if existing is node:
            return
        src_norm, dst_norm = self._normalize(source), self._normalize(target)
        if isinstance(node, FakeDirectory) and dst_norm.startswith(src_norm + "/"):
            raise make_error(errno.EINVAL, target)
        if existing is not None:
            if isinstance(existing, FakeDirectory) and not isinstance(node, FakeDirectory):
                raise make_error(errno.EISDIR, target)
            if isinstance(node, FakeDirectory) and not isinstance(existing, FakeDirectory):
                raise make_error(errno.ENOTDIR, target)
            if isinstance(existing, FakeDirectory) and existing.entries:
                raise make_error(errno.ENOTEMPTY, target)
        self._check_dir_writable(src_parent, source)
        self._check_dir_writable(dst_parent, target)
        self._version += 1
        del src_parent.entries[src_name]
        if existing is not None:
            self._used -= self._size_of(existing)
            self._entries -= self._count_of(existing)
        dst_parent.entries.pop(dst_name, None)
        node.name = dst_name  # type: ignore[assignment]
        dst_parent.add_entry(node)

    # -- internals -------------------------------------------------------
    def _root(self) -> FakeDirectory:
        if self._fs is None:
            raise SandboxError("the fake sandbox is closed")
        return self._fs.root

    @staticmethod
    def _normalize(path: str, base: str = HOME) -> str:
        if not isinstance(path, str):
            raise TypeError(f"path must be str, not {type(path).__name__}")
        if not path:
            raise make_error(errno.ENOENT, path)
        if "\x00" in path:
            raise make_error(errno.EINVAL, path)
        if len(path) > MAX_PATH_CHARS:
            # Bounded like PATH_MAX: every lookup walks the path, so a 20,000-deep
            # ``mkdir -p`` would otherwise be quadratic.
            raise make_error(errno.ENAMETOOLONG, path[:64] + "...")
        norm = posixpath.normpath(posixpath.join(base, path))
        return "/" + norm.lstrip("/")

    def _lookup(
        self, path: str, base: str = HOME
    ) -> tuple[FakeDirectory | None, str, FakeFile | None]:
        """(parent directory, last name, node or None); parent is None for ``/``."""
        norm = self._normalize(path, base)
        root = self._root()
        if norm == "/":
            return None, "", root
        *dirs, name = norm[1:].split("/")
        parent: FakeFile = root
        for part in dirs:
            child = parent.entries.get(part)
            if child is None:
                raise make_error(errno.ENOENT, path)
            if not isinstance(child, FakeDirectory):
                raise make_error(errno.ENOTDIR, path)
            parent = child
        assert isinstance(parent, FakeDirectory)
        return parent, name, parent.entries.get(name)

    def _node(self, path: str, shown: str | None = None) -> FakeFile:
        node = self._lookup(path)[2]
        if node is None:
            raise make_error(errno.ENOENT, path if shown is None else shown)
        return node

    @staticmethod
    def _entry(path: str, node: FakeFile) -> FileEntry:
        is_dir = isinstance(node, FakeDirectory)
        size = 0 if is_dir else len(node.byte_contents or b"")
        name = posixpath.basename(path) or "/"
        return FileEntry(name, path, is_dir, size, stat.S_IMODE(node.st_mode))

    @staticmethod
    def _check_dir_writable(directory: FakeDirectory, path: str) -> None:
        if not directory.st_mode & _W:
            raise make_error(errno.EACCES, path)

    def _write(self, path: str, data: bytes, *, append: bool, mode: int | None) -> None:
        parent, name, node = self._lookup(path)
        if parent is None or isinstance(node, FakeDirectory) or name in ("", ".", ".."):
            raise make_error(errno.EISDIR, path)
        if node is None:
            self._check_dir_writable(parent, path)
            self._admit_entry(path)
            self._reserve(len(data), path)
            self._version += 1
            perm = DEFAULT_FILE_MODE if mode is None else stat.S_IMODE(mode)
            parent.add_entry(new_file(name, stat.S_IFREG | perm, data, self._fs))
            return
        if not node.st_mode & _W:
            raise make_error(errno.EACCES, path)
        old = node.byte_contents or b""
        self._reserve(len(data) if append else len(data) - len(old), path)
        self._version += 1
        node.set_initial_contents(old + data if append else data)
        if mode is not None:
            node.st_mode = stat.S_IFREG | stat.S_IMODE(mode)

    def _reserve(self, delta: int, path: str) -> None:
        """Account for ``delta`` more bytes; raises OSError ENOSPC past the quota."""
        if delta > 0 and self._used + delta > self.disk_quota:
            raise make_error(errno.ENOSPC, path)
        self._used += delta

    def _admit_entry(self, path: str) -> None:
        """Count one new entry; raises OSError ENOSPC (no inodes left) past the bound."""
        if self._entries >= MAX_TREE_ENTRIES:
            raise OSError(errno.ENOSPC,
                          f"No space left on device (resource limit: {MAX_TREE_ENTRIES} entries)",
                          path)
        self._entries += 1

    @staticmethod
    def _count_of(node: FakeFile) -> int:
        """Entries in a file (1) or a whole directory tree (itself included)."""
        total, pending = 0, [node]
        while pending:
            current = pending.pop()
            total += 1
            if isinstance(current, FakeDirectory):
                pending.extend(current.entries.values())
        return total

    @staticmethod
    def _size_of(node: FakeFile) -> int:
        """Bytes of content in a file or a whole directory tree."""
        total, pending = 0, [node]
        while pending:
            current = pending.pop()
            if isinstance(current, FakeDirectory):
                pending.extend(current.entries.values())
            else:
                total += len(current.byte_contents or b"")
        return total

    @staticmethod
    def _check_removable(directory: FakeDirectory, path: str) -> None:
        """Every non-empty directory below ``path`` needs owner read+write.

        Checked for the whole subtree before anything is removed, so a refused
        recursive delete removes nothing (real ``rm -r`` would remove what it can).
        """
        stack: list[tuple[FakeDirectory, str]] = [(directory, path)]
        while stack:
            node, where = stack.pop()
            if not node.entries:
                continue
            if not node.st_mode & _R or not node.st_mode & _W:
                raise make_error(errno.EACCES, where)
            for name, child in node.entries.items():
                if isinstance(child, FakeDirectory):
                    stack.append((child, f"{where.rstrip('/')}/{name}"))
