"""Sandboxes: the file system and shell part of a world, behind one contract.

* :class:`Sandbox` (``base.py``): the contract every backend implements (exec a command,
  read/write/list files, snapshot, diff, reset, close) and its data types.
* :func:`register_sandbox`, :func:`make_sandbox`, :func:`sandbox_names` (``registry.py``):
  backends by name. Shipped: ``fake`` (``fake/``: in-process pyfakefs and a small shell
  interpreter) and ``docker`` (``docker/``: a hardened container; the ``docker`` extra).
* :mod:`mosaic_gym.sandbox.conformance`: the pytest suite a backend must pass.
"""

from __future__ import annotations

from mosaic_gym.sandbox.base import (
    HOME,
    ExecResult,
    FileChange,
    FileEntry,
    FileSpec,
    FileState,
    HttpHandler,
    HttpRequest,
    HttpResponse,
    Sandbox,
    Snapshot,
    diff_snapshots,
)
from mosaic_gym.sandbox.registry import make_sandbox, register_sandbox, sandbox_names

__all__ = [
    "HOME",
    "ExecResult",
    "FileChange",
    "FileEntry",
    "FileSpec",
    "FileState",
    "HttpHandler",
    "HttpRequest",
    "HttpResponse",
    "Sandbox",
    "Snapshot",
    "diff_snapshots",
    "make_sandbox",
    "register_sandbox",
    "sandbox_names",
]
