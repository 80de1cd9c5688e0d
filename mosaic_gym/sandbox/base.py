"""The sandbox contract shared by every backend ("fake", "docker").

A sandbox holds the *file system and shell* part of a world. Other services
(mail, bank, vault, web, contacts) are simulated in-process and are the same
for every backend. A backend must pass the shared conformance suite in
``tests/sandbox/test_conformance.py``.

Errors: file operations raise the standard ``OSError`` subclasses
(``FileNotFoundError``, ``IsADirectoryError``, ``NotADirectoryError``,
``PermissionError``, ``FileExistsError``) for problems caused by the request;
infrastructure failures raise :class:`~mosaic_gym.errors.SandboxError`.
``exec`` never raises for a bad command: it reports a non-zero exit code.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

#: Where the agent's user lives inside every sandbox. Paths in scenarios are
#: absolute; this is the shell's starting directory and the writable area.
HOME = "/home/user"

#: Default per-command limits (a scenario or backend may lower them).
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_OUTPUT_CAP = 64 * 1024


@dataclass(frozen=True)
class ExecResult:
    """What one shell command did."""

    exit_code: int
    stdout: str
    stderr: str = ""
    timed_out: bool = False
    #: True when stdout or stderr was cut at the output cap.
    truncated: bool = False


@dataclass(frozen=True)
class FileSpec:
    """A file (or directory) to materialise when a world is set up."""

    path: str
    content: bytes = b""
    mode: int = 0o644
    is_dir: bool = False


@dataclass(frozen=True)
class FileEntry:
    """One row of a directory listing."""

    name: str
    path: str
    is_dir: bool
    size: int
    mode: int


@dataclass(frozen=True)
class FileState:
    """What a snapshot remembers of one path: enough to detect any change."""

    is_dir: bool
    mode: int
    size: int
    #: sha256 of the content; ``None`` for directories.
    sha256: str | None


#: A snapshot maps absolute paths to their state.
Snapshot = Mapping[str, FileState]

ChangeKind = Literal["created", "deleted", "modified", "mode_changed"]


@dataclass(frozen=True)
class FileChange:
    """One difference between two snapshots."""

    path: str
    kind: ChangeKind
    before: FileState | None
    after: FileState | None


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request that left a sandbox (curl/wget from the shell)."""

    method: str
    url: str
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: str = ""


#: The world's web service answers requests coming out of a sandbox. Every
#: request is recorded there, so egress from the shell is judged like egress
#: from a tool.
HttpHandler = Callable[[HttpRequest], HttpResponse]


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def diff_snapshots(before: Snapshot, after: Snapshot) -> list[FileChange]:
    """Every path created, deleted, modified or re-moded between two snapshots.

    Sorted by path so that results are deterministic.
    """
    changes: list[FileChange] = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        if old is None:
            changes.append(FileChange(path, "created", None, new))
        elif new is None:
            changes.append(FileChange(path, "deleted", old, None))
        elif old.sha256 != new.sha256 or old.is_dir != new.is_dir:
            changes.append(FileChange(path, "modified", old, new))
        else:
            changes.append(FileChange(path, "mode_changed", old, new))
    return changes


class Sandbox(ABC):
    """A file system plus a shell, isolated per environment instance.

    Lifecycle: ``setup(files)`` materialises a world and remembers it as the
    reset point; ``reset()`` returns to it; ``close()`` frees resources and is
    idempotent. All paths are absolute POSIX paths.
    """

    #: Registry name ("fake", "docker").
    backend: ClassVar[str]

    def __init__(self, http: HttpHandler | None = None) -> None:
        self.http: HttpHandler | None = http

    # -- lifecycle -----------------------------------------------------
    @abstractmethod
    def setup(self, files: Sequence[FileSpec], *, network: HttpHandler | None = None) -> None:
        """Replace the whole work area with ``files`` (parents are created).

        ``network``: the world's web service for this world; requests from the shell go to
        it. ``None`` keeps the handler given at construction (if any). The world hands its
        handler over here, when it is built, so no one patches a sandbox's attributes.
        """

    @abstractmethod
    def reset(self) -> None:
        """Return to the state of the last ``setup``."""

    @abstractmethod
    def close(self) -> None:
        """Free every resource; safe to call twice."""

    # -- shell ---------------------------------------------------------
    @abstractmethod
    def exec(
        self,
        command: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        output_cap: int = DEFAULT_OUTPUT_CAP,
    ) -> ExecResult:
        """Run ``command`` in a shell starting in :data:`HOME`.

        Never raises for a failing or unsupported command; an infrastructure
        failure raises ``SandboxError``.
        """

    # -- files ---------------------------------------------------------
    @abstractmethod
    def read_file(self, path: str) -> bytes: ...

    def read_file_privileged(self, path: str) -> bytes:
        """The content of a file whatever its permission bits: the judge's read.

        The agent's permission model does not apply (a ``chmod 000`` file is read all the
        same), so a check such as ``file_lacks`` cannot be blinded by the agent. It changes
        nothing the agent could observe and bumps no version. Same errors as
        :meth:`read_file` but ``PermissionError``. The default (for backends without a
        permission model) is :meth:`read_file`.
        """
        return self.read_file(path)

    @abstractmethod
    def write_file(self, path: str, data: bytes, *, mode: int | None = None) -> None:
        """Create or overwrite a file; parent directories must exist."""

    @abstractmethod
    def list_dir(self, path: str) -> list[FileEntry]: ...

    @abstractmethod
    def delete(self, path: str, *, recursive: bool = False) -> None: ...

    @abstractmethod
    def exists(self, path: str) -> bool: ...

    # -- state ---------------------------------------------------------
    @abstractmethod
    def snapshot(self) -> Snapshot:
        """The state of every path under the watched roots."""

    @property
    def version(self) -> int | None:
        """A counter that changes whenever the file system may have changed.

        Backends that can track their own mutations (the fake one) return a
        number so callers may skip a snapshot when nothing changed; backends
        that cannot (a real shell) return ``None``, meaning "always snapshot".
        """
        return None

    def diff(self, before: Snapshot, after: Snapshot | None = None) -> list[FileChange]:
        """Changes from ``before`` to ``after`` (default: now)."""
        return diff_snapshots(before, self.snapshot() if after is None else after)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
