"""The in-process sandbox backend: one pyfakefs file system per instance.

Nothing here touches the host: files live in a private
:class:`pyfakefs.fake_filesystem.FakeFilesystem` (never patched into ``os``), and
``exec`` runs the small interpreter in :mod:`mosaic_gym.sandbox.fake.shell`, whose
commands only call the file operations of this class.

The file methods and the permission model (the agent is a non-root user who owns
every file) live in :mod:`mosaic_gym.sandbox.fake.files`. Every operation that may
change the tree bumps :attr:`FakeSandbox.version` first, so a caller that sees an
unchanged version may skip a snapshot; snapshots themselves are cached per version.
"""

from __future__ import annotations

import errno
import posixpath
import stat
import weakref
from collections.abc import Sequence
from types import MappingProxyType
from typing import ClassVar, TypeVar, cast

from pyfakefs.fake_file import FakeDirectory, FakeFile
from pyfakefs.fake_filesystem import FakeFilesystem

from mosaic_gym.errors import SandboxError
from mosaic_gym.sandbox.base import (
    DEFAULT_OUTPUT_CAP,
    DEFAULT_TIMEOUT_S,
    HOME,
    ExecResult,
    FileSpec,
    FileState,
    HttpHandler,
    Sandbox,
    Snapshot,
    content_hash,
)
from mosaic_gym.sandbox.fake.files import (
    DEFAULT_DIR_MODE,
    DEFAULT_DISK_QUOTA,
    FakeFileOperations,
    make_error,
    new_file,
)
from mosaic_gym.sandbox.fake.shell import Shell
from mosaic_gym.sandbox.registry import register_sandbox

#: Directories present in every fresh world (besides ``/``), with their modes.
BASE_DIRS: tuple[tuple[str, int], ...] = (("/home", 0o755), (HOME, 0o755), ("/tmp", 0o1777))

_Node = TypeVar("_Node", bound=FakeFile)

#: What ``reset`` restores for one node: (node, name, st_mode, content, children).
_Pristine = tuple[FakeFile, str, int, "bytes | None", "dict[str, FakeFile] | None"]


def _attach(parent: FakeDirectory, node: _Node) -> _Node:
    """Hang ``node`` under ``parent`` (setup only: ``add_entry`` does inode and disk
    bookkeeping that nothing here reads, and costs more than the rest of setup)."""
    parent.entries[cast(str, node.name)] = node
    node.parent_dir = weakref.ref(parent)
    return node


@register_sandbox("fake")
class FakeSandbox(FakeFileOperations, Sandbox):
    """A sandbox whose file system is an in-memory pyfakefs tree.

    Fresh instances already hold the base layout (``/home/user``, ``/tmp``), as if
    ``setup([])`` had run. Relative paths given to the file methods resolve against
    :data:`HOME`. Besides the abstract contract, the shell uses the extra primitives
    :meth:`stat`, :meth:`append_file`, :meth:`make_dir`, :meth:`touch`, :meth:`chmod` and
    :meth:`rename`; other callers may use them too.
    """

    backend: ClassVar[str] = "fake"

    def __init__(
        self, http: HttpHandler | None = None, *, disk_quota: int = DEFAULT_DISK_QUOTA
    ) -> None:
        super().__init__(http)
        self.disk_quota = disk_quota
        # The only constructor call of pyfakefs per instance: it probes the process
        # umask (set and restored at once), which we never rely on.
        fs = FakeFilesystem(path_separator="/")
        fs.is_case_sensitive = True
        self._fs: FakeFilesystem | None = fs
        self._version = 0
        self._setup_specs: tuple[FileSpec, ...] | None = None
        self._pristine: list[_Pristine] = []
        self._pristine_version = -1
        self._pristine_used = 0
        self._pristine_snapshot: Snapshot | None = None
        self._snapshot: Snapshot | None = None
        self._snapshot_version = -1
        self._hashes: dict[int, tuple[bytes, str]] = {}
        self.setup(())

    # -- lifecycle -----------------------------------------------------
    def setup(self, files: Sequence[FileSpec], *, network: HttpHandler | None = None) -> None:
        """Replace the whole tree with the base layout plus ``files``; ``network`` as in
        :meth:`Sandbox.setup`.

        Parents are created with mode 0o755; directory modes are applied last so a
        read-only directory may still be given contents. Setting up the same specs
        twice in a row is as cheap as :meth:`reset`.

        Raises:
            ValueError: a spec path is relative.
            NotADirectoryError / IsADirectoryError: specs contradict each other.
        """
        if network is not None:
            self.http = network
        specs = tuple(files)
        if specs == self._setup_specs and self._pristine:
            self.reset()
            return
        root = self._root()
        self._version += 1
        try:
            self._build(root, specs)
        except (OSError, ValueError):
            if self._pristine:
                self.reset()  # leave the previous world in place, not half a new one
            raise
        self._setup_specs = specs
        self._pristine = self._record(root)
        self._used = self._pristine_used = self._size_of(root)
        self._entries = len(self._pristine) - 1  # every node but the root
        self._pristine_version = self._version
        self._pristine_snapshot = None

    def _build(self, root: FakeDirectory, specs: tuple[FileSpec, ...]) -> None:
        """Create the nodes of a world directly (no permission checks, no lookups twice)."""
        root.entries.clear()
        root.st_mode = stat.S_IFDIR | DEFAULT_DIR_MODE
        dirs: dict[str, FakeDirectory] = {"/": root}
        dir_modes: dict[str, int] = {}

        def ensure(path: str) -> FakeDirectory:
            """``mkdir -p`` of a normalised absolute path."""
            node, current = root, ""
            for part in path[1:].split("/") if path != "/" else ():
                current += "/" + part
                child = dirs.get(current)
                if child is None:
                    existing = node.entries.get(part)
                    if existing is not None and not isinstance(existing, FakeDirectory):
                        raise make_error(errno.ENOTDIR, path)
                    child = existing or _attach(
                        node, FakeDirectory(part, DEFAULT_DIR_MODE, self._fs)
                    )
                    dirs[current] = child
                node = child
            return node

        for path, mode in BASE_DIRS:
            ensure(path)
            dir_modes[path] = mode
        for spec in specs:
            if not spec.path.startswith("/"):
                raise ValueError(f"FileSpec path must be absolute: {spec.path!r}")
            path = self._normalize(spec.path)
            if spec.is_dir:
                ensure(path)
                dir_modes[path] = spec.mode
                continue
            directory, name = posixpath.split(path)
            parent = ensure(directory)
            if not name or isinstance(parent.entries.get(name), FakeDirectory):
                raise make_error(errno.EISDIR, path)
            mode = stat.S_IFREG | stat.S_IMODE(spec.mode)
            _attach(parent, new_file(name, mode, bytes(spec.content), self._fs))
        for path, mode in dir_modes.items():
            dirs[path].st_mode = stat.S_IFDIR | stat.S_IMODE(mode)

    def reset(self) -> None:
        """Restore the tree of the last :meth:`setup` in place (no node is rebuilt)."""
        self._root()
        self._version += 1
        for node, name, mode, content, children in self._pristine:
            node.name = name  # type: ignore[assignment]
            node.st_mode = mode
            if children is None:
                if node.byte_contents is not content:
                    node.set_initial_contents(content or b"")
            else:
                entries = node.entries
                entries.clear()
                entries.update(children)
                parent_ref = weakref.ref(node)
                for child in children.values():
                    child.parent_dir = parent_ref
        self._pristine_version = self._version
        self._used = self._pristine_used
        self._entries = len(self._pristine) - 1
        if self._pristine_snapshot is not None:
            self._snapshot, self._snapshot_version = self._pristine_snapshot, self._version

    def close(self) -> None:
        """Drop the file system; later calls raise :class:`SandboxError`. Idempotent."""
        self._fs = None
        self._pristine = []
        self._snapshot = self._pristine_snapshot = None
        self._hashes = {}

    # -- shell ---------------------------------------------------------
    def exec(
        self,
        command: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        output_cap: int = DEFAULT_OUTPUT_CAP,
    ) -> ExecResult:
        """Interpret ``command`` with :class:`~mosaic_gym.sandbox.fake.shell.Shell`.

        ``timeout`` is a budget of *virtual* seconds (commands cost time, ``sleep``
        costs its argument); nothing really sleeps. Never raises for a bad command;
        an interpreter bug surfaces as :class:`SandboxError` (fail closed).
        """
        self._root()
        try:
            return Shell(self, timeout=timeout, output_cap=output_cap).run(command)
        except SandboxError:
            raise
        except Exception as exc:  # a bug of ours, not of the agent: fail closed
            raise SandboxError(f"fake shell crashed on {command[:200]!r}: {exc!r}") from exc

    # -- state ---------------------------------------------------------
    @property
    def version(self) -> int:
        """Bumped by every operation that may have changed the tree."""
        return self._version

    def snapshot(self) -> Snapshot:
        """Every path except ``/``: a read-only mapping, cached until the next change."""
        if self._snapshot is not None and self._snapshot_version == self._version:
            return self._snapshot
        states: dict[str, FileState] = {}
        hashes: dict[int, tuple[bytes, str]] = {}
        stack: list[tuple[str, FakeDirectory]] = [("", self._root())]
        while stack:
            prefix, directory = stack.pop()
            for name, node in directory.entries.items():
                path = f"{prefix}/{name}"
                mode = stat.S_IMODE(node.st_mode)
                if isinstance(node, FakeDirectory):
                    states[path] = FileState(True, mode, 0, None)
                    stack.append((path, node))
                    continue
                data = node.byte_contents or b""
                cached = self._hashes.get(id(data))
                digest = cached[1] if cached and cached[0] is data else content_hash(data)
                hashes[id(data)] = (data, digest)
                states[path] = FileState(False, mode, len(data), digest)
        self._hashes = hashes
        self._snapshot = MappingProxyType(states)
        self._snapshot_version = self._version
        if self._version == self._pristine_version:
            self._pristine_snapshot = self._snapshot
        return self._snapshot

    @staticmethod
    def _record(root: FakeDirectory) -> list[_Pristine]:
        record: list[_Pristine] = []
        stack: list[FakeFile] = [root]
        while stack:
            node = stack.pop()
            if isinstance(node, FakeDirectory):
                children = dict(node.entries)
                record.append((node, cast(str, node.name), node.st_mode, None, children))
                stack.extend(children.values())
            else:
                name = cast(str, node.name)
                record.append((node, name, node.st_mode, node.byte_contents, None))
        return record
