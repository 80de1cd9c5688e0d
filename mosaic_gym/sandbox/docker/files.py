"""File operations of the docker sandbox (a mixin), each one request to its shell.

The checks live in the shell helpers (``__mosaic_read`` and friends in
:mod:`mosaic_gym.sandbox.docker.shell`), which answer with an errno-like exit
status; here the status becomes the standard ``OSError`` subclass, with the
path as given. Relative paths resolve against :data:`HOME`, as on the fake backend.
The kernel decides permissions, for a uid-1000 user who owns every file of the world.
"""

from __future__ import annotations

import base64
import errno
import os
import secrets
import shlex

from mosaic_gym.errors import SandboxError
from mosaic_gym.sandbox.base import HOME, FileEntry
from mosaic_gym.sandbox.docker.limits import MAX_HOST_READ_BYTES
from mosaic_gym.sandbox.docker.shell import Reply
from mosaic_gym.sandbox.docker.world import file_error, normalize, parse_listing


class DockerFileOperations:
    """read/write/list/delete/exists over :meth:`_harness` (provided by the sandbox)."""

    def _harness(self, script: str) -> Reply:
        raise NotImplementedError

    def read_file(self, path: str) -> bytes:
        """The content of a regular file of at most MAX_HOST_READ_BYTES.

        Raises FileNotFoundError, IsADirectoryError, PermissionError; OSError EINVAL for
        anything but a regular file (symlink, FIFO, device: never opened) and EFBIG for a
        file over the bound.
        """
        target = normalize(path, HOME)
        reply = self._harness(f"__mosaic_read {shlex.quote(target)} {MAX_HOST_READ_BYTES + 1}")
        _raise_for(reply, path)
        if len(reply.stdout) > MAX_HOST_READ_BYTES:
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), path)
        return reply.stdout

    def read_file_privileged(self, path: str) -> bytes:
        """:meth:`read_file` whatever the mode bits of the file and its directories (the
        judge's read): the harness (the owner) lends itself the read and search bits it
        lacks for the one read and puts the old modes back before answering."""
        target = normalize(path, HOME)
        limit = MAX_HOST_READ_BYTES + 1
        script = (
            "__mosaic_privread() { "
            f"__mosaic_p={shlex.quote(target)}; __mosaic_fix=; __mosaic_d=${{__mosaic_p%/*}}; "
            "while [ -n \"$__mosaic_d\" ]; do "
            "if [ -d \"$__mosaic_d\" ] && ! [ -x \"$__mosaic_d\" ]; then "
            "__mosaic_fix=\"$(stat -c %a \"$__mosaic_d\") $__mosaic_d\n$__mosaic_fix\"; "
            "chmod u+x \"$__mosaic_d\" 2>/dev/null; fi; __mosaic_d=${__mosaic_d%/*}; done; "
            "if [ -f \"$__mosaic_p\" ] && [ ! -L \"$__mosaic_p\" ] && ! [ -r \"$__mosaic_p\" ]; "
            "then __mosaic_fix=\"$(stat -c %a \"$__mosaic_p\") $__mosaic_p\n$__mosaic_fix\"; "
            "chmod u+r \"$__mosaic_p\" 2>/dev/null; fi; "
            f"__mosaic_read \"$__mosaic_p\" {limit}; __mosaic_rc=$?; "
            "printf '%b' \"$__mosaic_fix\" | while read -r __mosaic_m __mosaic_f; do "
            "[ -n \"$__mosaic_f\" ] && chmod \"$__mosaic_m\" \"$__mosaic_f\"; done; "
            "return $__mosaic_rc; }; __mosaic_privread"
        )
        reply = self._harness(script)
        _raise_for(reply, path)
        if len(reply.stdout) > MAX_HOST_READ_BYTES:
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), path)
        return reply.stdout

    def write_file(self, path: str, data: bytes, *, mode: int | None = None) -> None:
        """Create (0o644 unless ``mode``) or overwrite a file; the parent must exist."""
        target = normalize(path, HOME)
        if target == "/" or target.endswith("/."):
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        delimiter = f"MOSAIC_DATA_{secrets.token_hex(8)}"
        mode_arg = "-" if mode is None else format(mode & 0o7777, "o")
        encoded = base64.encodebytes(bytes(data)).decode("ascii").rstrip("\n")
        script = (
            f"__mosaic_write {shlex.quote(target)} {mode_arg} <<'{delimiter}'\n"
            f"{encoded}\n{delimiter}"
        )
        _raise_for(self._harness(script), path)

    def list_dir(self, path: str) -> list[FileEntry]:
        """Entries of a directory, sorted by name (no ``.``/``..``)."""
        target = normalize(path, HOME)
        token = secrets.token_hex(8)
        reply = self._harness(f"__mosaic_list {shlex.quote(target)} {token}")
        _raise_for(reply, path)
        return parse_listing(reply.stdout, token)

    def delete(self, path: str, *, recursive: bool = False) -> None:
        """Remove a file, or a directory when ``recursive`` (or when it is empty)."""
        target = normalize(path, HOME)
        if target == "/":
            raise OSError(errno.EPERM, os.strerror(errno.EPERM), path)
        reply = self._harness(f"__mosaic_delete {shlex.quote(target)} {int(recursive)}")
        _raise_for(reply, path)

    def exists(self, path: str) -> bool:
        try:
            target = normalize(path, HOME)
        except OSError:
            return False
        quoted = shlex.quote(target)
        return self._harness(f"[ -e {quoted} ] || [ -L {quoted} ]").status == 0


def _raise_for(reply: Reply, path: str) -> None:
    error = file_error(reply.status, reply.stderr, path)
    if error is not None:
        raise error
    if reply.status != 0:
        message = reply.stderr.decode("utf-8", "replace").strip()
        raise SandboxError(f"file operation on {path!r} failed ({reply.status}): {message}")
