"""A persistent ``sh`` inside a sandbox container, driven over one exec socket.

One ``docker exec`` costs tens of milliseconds; writing a line to a shell that is
already running costs well under one. So each container gets one long-lived
busybox ``sh`` (uid 1000) whose stdin, stdout and stderr are the exec's socket,
and every request is a line of shell followed by an end marker::

    <script>
    __mosaic_end <token> $?

``__mosaic_end`` prints ``\\n<token> <status>\\n`` on stdout and ``\\n<token>\\n`` on
stderr. The token is random per request, so no output can fake the end of a
reply, and both streams are read until their marker arrived (docker copies them
independently). The helper functions the requests call are defined by
:data:`PRELUDE` when the session starts.

An agent command runs in a fresh process group under a watchdog (see
``__mosaic_run``): its output is cut at the cap *inside* the container (the rest
is drained to ``/dev/null``, so a 1 GB output costs no socket traffic), and at
the timeout the watchdog kills the command's process group (exit status 137
after the deadline: the caller reports a timeout). After every command the
shell kills whatever the command left behind (``__mosaic_reap``, which also
gets processes that left the group), so no process outlives the tool call that
started it. Should a command's leftovers keep the output pipes open past the
deadline, the caller kills every process of the sandbox user from a separate
exec and starts a new session.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mosaic_gym.errors import SandboxError
from mosaic_gym.sandbox.base import HOME
from mosaic_gym.sandbox.docker.compat import raw_socket

#: The uid:gid every agent process runs as.
SANDBOX_USER = "1000:1000"

#: Shell function: kill every process of the sandbox user but the caller; fails if
#: some survive (``kill -1`` alone cannot tell: it also "succeeds" on nobody's processes).
REAP_FUNCTION = r"""
# Kill every process of the sandbox user but this shell; fails if some survive.
__mosaic_reap() {
    __mosaic_i=0
    while [ "$__mosaic_i" -lt 100 ]; do
        kill -9 -1 2>/dev/null
        __mosaic_alive=
        for __mosaic_proc in /proc/[0-9]*; do
            [ "${__mosaic_proc#/proc/}" = "$$" ] && continue
            [ -O "$__mosaic_proc" ] || continue
            read -r __mosaic_stat 2>/dev/null < "$__mosaic_proc/stat" || continue
            case "${__mosaic_stat##*) }" in Z*) continue ;; esac
            __mosaic_alive=1
            break
        done
        [ -z "$__mosaic_alive" ] && return 0
        __mosaic_i=$((__mosaic_i + 1))
    done
    return 1
}
"""

#: A whole script for a separate exec: kill everything of the sandbox user.
KILL_ALL = REAP_FUNCTION + "__mosaic_reap\n"

PRELUDE = (
    REAP_FUNCTION
    + r"""
set -o pipefail
umask 022
# Shell functions that patch busybox gaps (GNU find -delete...), sourced before each command.
__mosaic_profile=/usr/share/mosaic-gym/profile.sh
__mosaic_end() { printf '\n%s %s\n' "$1" "$2"; printf '\n%s\n' "$1" >&2; }

# Copy at most $1 bytes of stdin to stdout, drop the rest (the writer never blocks).
__mosaic_cap() { head -c "$1"; cat >/dev/null; }

# Run $2 in its own process group; a watchdog kills that group after $1 seconds.
__mosaic_job() {
    cd "$HOME" 2>/dev/null || cd /
    setsid sh -c "[ ! -r $__mosaic_profile ] || . $__mosaic_profile
$2" </dev/null &
    __mosaic_cmd=$!
    setsid sh -c 'sleep "$1"; i=0; while [ $i -lt 100 ] && kill -9 -"$2"; do i=$((i+1)); done' \
        watchdog "$1" "$__mosaic_cmd" </dev/null >/dev/null 2>&1 &
    __mosaic_dog=$!
    wait "$__mosaic_cmd"
    __mosaic_rc=$?
    __mosaic_i=0
    while [ "$__mosaic_i" -lt 100 ] && kill -9 -"$__mosaic_cmd" 2>/dev/null; do
        __mosaic_i=$((__mosaic_i + 1))
    done
    kill -9 -"$__mosaic_dog" 2>/dev/null
    return "$__mosaic_rc"
}

# __mosaic_run LIMIT TIMEOUT COMMAND: stdout and stderr each cut at LIMIT bytes.
__mosaic_run() {
    { { __mosaic_job "$2" "$3" 2>&1 1>&3 3>&- | __mosaic_cap "$1" >&2; } 3>&1 \
        | __mosaic_cap "$1"; }
    __mosaic_rc=$?
    __mosaic_reap
    return "$__mosaic_rc"
}

# Where PATH stands: 0 exists, 2 missing, 13 a parent is not searchable, 20 a parent is a file.
__mosaic_lookup() {
    if [ -e "$1" ] || [ -L "$1" ]; then return 0; fi
    __mosaic_dir=${1%/*}
    while [ -n "$__mosaic_dir" ]; do
        if [ -e "$__mosaic_dir" ]; then
            [ -d "$__mosaic_dir" ] || return 20
            [ -x "$__mosaic_dir" ] || return 13
            return 2
        fi
        __mosaic_dir=${__mosaic_dir%/*}
    done
    return 2
}

# __mosaic_read PATH LIMIT: a regular file only (a symlink, FIFO or device is never
# opened: /dev/zero would stream forever into the host, a FIFO would block), and at most
# LIMIT+1 bytes, so the host can tell "too big" from "exactly LIMIT".
__mosaic_read() {
    __mosaic_lookup "$1" || return
    [ -e "$1" ] || [ -L "$1" ] || return 2
    [ -d "$1" ] && [ ! -L "$1" ] && return 21
    { [ -f "$1" ] && [ ! -L "$1" ]; } || return 22
    [ -r "$1" ] || return 13
    head -c "$2" "$1" || return 5
}

# __mosaic_write PATH MODE|- < base64 content
__mosaic_write() {
    __mosaic_parent=${1%/*}
    __mosaic_lookup "${__mosaic_parent:-/}" || return
    [ -d "${__mosaic_parent:-/}" ] || return 20
    [ -d "$1" ] && return 21
    if [ -e "$1" ]; then
        [ -w "$1" ] || return 13
    else
        [ -w "${__mosaic_parent:-/}" ] || return 13
    fi
    base64 -d > "$1" || return 28
    if [ "$2" != - ]; then chmod "$2" "$1" || return 5; fi
}

# __mosaic_list DIR TOKEN: one "<token><hex mode> <size> <path>" record per entry.
__mosaic_list() {
    __mosaic_lookup "$1" || return
    [ -d "$1" ] || return 20
    [ -r "$1" ] || return 13
    /usr/bin/find "$1" -mindepth 1 -maxdepth 1 -exec stat -c "$2%f %s %n" {} + || return 5
}

# __mosaic_delete PATH RECURSIVE(0|1), with the fake backend's rules.
__mosaic_delete() {
    __mosaic_lookup "$1" || return
    __mosaic_parent=${1%/*}
    [ -w "${__mosaic_parent:-/}" ] || return 13
    if [ -d "$1" ] && [ ! -L "$1" ]; then
        if [ "$2" != 1 ] && [ -n "$(ls -A "$1" 2>/dev/null)" ]; then return 21; fi
        __mosaic_locked=$(/usr/bin/find "$1" -type d ! -perm -600 ! -empty 2>&1 | head -n 1)
        [ -z "$__mosaic_locked" ] || return 13
        rm -rf "$1" || return 5
    else
        rm -f "$1" || return 5
    fi
}

# __mosaic_snapshot TOKEN ROOT...: modes fixed for reading ("F"), stats ("S"),
# then "H" and sha256sum lines, then symlink targets ("L").
__mosaic_snapshot() {
    __mosaic_t=$1
    shift
    /usr/bin/find "$@" \( -type d ! -perm -500 -exec stat -c "${__mosaic_t}F%a %n" {} \; \
        -exec chmod u+rx {} \; \) -o \( -type f ! -perm -400 \
        -exec stat -c "${__mosaic_t}F%a %n" {} \; -exec chmod u+r {} \; \)
    stat -c "${__mosaic_t}S%f %s %n" /home
    /usr/bin/find "$@" -exec stat -c "${__mosaic_t}S%f %s %n" {} + || return 5
    printf '%sH\n' "$__mosaic_t"
    /usr/bin/find "$@" -type f -exec sha256sum {} + || return 5
    /usr/bin/find "$@" -type l -exec stat -c "${__mosaic_t}L%N" {} +
}

# __mosaic_wipe ROOT...: empty the work roots (what the engine mounted stays).
__mosaic_wipe() {
    __mosaic_reap || { echo "mosaic: processes survived the reset" >&2; return 70; }
    for __mosaic_root in "$@"; do
        /usr/bin/find "$__mosaic_root" -type d ! -perm -700 -exec chmod u+rwx {} \; 2>/dev/null
        rm -rf "$__mosaic_root"/* "$__mosaic_root"/.[!.]* "$__mosaic_root"/..?* 2>/dev/null
    done
    return 0
}
__mosaic_reap
"""
)

_FRAME_HEADER = struct.Struct(">BxxxI")


@dataclass(frozen=True)
class Reply:
    """What the shell answered to one request."""

    stdout: bytes
    stderr: bytes
    status: int


class SessionLost(Exception):
    """The shell went away (EOF) or did not answer in time; holds what it had sent."""

    def __init__(self, reason: str, stdout: bytes, stderr: bytes, *, eof: bool) -> None:
        super().__init__(reason)
        self.stdout, self.stderr, self.eof = stdout, stderr, eof


class ShellSession:
    """One long-lived ``sh`` in a container. Not thread-safe: one request at a time."""

    def __init__(
        self, api: Any, container_id: str, *, environment: Mapping[str, str] | None = None
    ) -> None:
        self._api = api
        self._container_id = container_id
        self._environment = dict(environment or {})
        self._socket: socket.socket | None = None
        self._holder: Any = None
        self._buffer = bytearray()

    @property
    def alive(self) -> bool:
        return self._socket is not None

    def start(self) -> None:
        """Start the shell and define the helpers. Raises ``SandboxError`` on failure."""
        import docker.errors  # noqa: PLC0415 - only docker modules import docker

        self.close()
        environment = {"HOME": HOME, "USER": "user", "LOGNAME": "user", "PWD": HOME}
        environment.update(self._environment)
        try:
            exec_id = self._api.exec_create(
                self._container_id,
                ["/bin/sh"],
                stdin=True,
                stdout=True,
                stderr=True,
                tty=False,
                user=SANDBOX_USER,
                workdir=HOME,
                environment=environment,
            )["Id"]
            holder = self._api.exec_start(exec_id, socket=True)
        except docker.errors.APIError as error:
            raise SandboxError(f"cannot start a shell in the sandbox: {error}") from error
        self._holder = holder  # keeps the HTTP response (and so the socket) alive
        self._socket = raw_socket(holder)
        self._buffer.clear()
        try:
            self._send(PRELUDE.encode())
            self.call(":", timeout=30)
        except SessionLost as lost:
            self.close()
            raise SandboxError(f"the sandbox shell died while starting: {lost}") from lost

    def close(self) -> None:
        for closable in (self._socket, self._holder):
            if closable is not None:
                with contextlib.suppress(OSError):
                    closable.close()
        self._socket = self._holder = None

    def call(self, script: str | bytes, *, timeout: float) -> Reply:
        """Run one request; raises ``SessionLost`` (and closes) on EOF or after ``timeout``."""
        token = secrets.token_hex(12).encode()
        body = script.encode() if isinstance(script, str) else script
        self._send(body + b"\n__mosaic_end " + token + b" $?\n")
        return self._receive(token, time.monotonic() + timeout)

    def _send(self, data: bytes) -> None:
        if self._socket is None:
            raise SessionLost("the shell is not running", b"", b"", eof=True)
        try:
            self._socket.settimeout(60)
            self._socket.sendall(data)
        except OSError as error:
            self.close()
            raise SessionLost(f"cannot write to the shell: {error}", b"", b"", eof=True) from error

    def _receive(self, token: bytes, deadline: float) -> Reply:
        assert self._socket is not None
        out, err = bytearray(), bytearray()
        # Every reply is bounded on the host: whatever the container prints, this
        # process never holds more than MAX_REPLY_BYTES of it.
        from mosaic_gym.sandbox.docker.limits import MAX_REPLY_BYTES
        out_end = re.compile(rb"\n" + token + rb" (\d+)\n\Z")
        err_end = b"\n" + token + b"\n"
        out_done = err_done = None
        while True:
            self._drain_frames(out, err)
            if out_done is None:
                out_done = out_end.search(out, max(0, len(out) - len(token) - 16))
            if err_done is None and err.endswith(err_end):
                err_done = True
            if out_done is not None and err_done:
                status = int(out_done.group(1))
                return Reply(bytes(out[: out_done.start()]), bytes(err[: -len(err_end)]), status)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise SessionLost("the shell did not answer in time", bytes(out), bytes(err),
                                  eof=False)  # fmt: skip
            try:
                self._socket.settimeout(remaining)
                chunk = self._socket.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError as error:
                self.close()
                raise SessionLost(f"lost the shell: {error}", bytes(out), bytes(err),
                                  eof=True) from error  # fmt: skip
            if not chunk:
                self.close()
                raise SessionLost("the shell exited", bytes(out), bytes(err), eof=True)
            self._buffer += chunk
            if len(out) + len(err) + len(self._buffer) > MAX_REPLY_BYTES:
                self.close()
                raise SessionLost(f"the shell's reply exceeds {MAX_REPLY_BYTES} bytes",
                                  b"", b"", eof=False)  # fmt: skip

    def _drain_frames(self, out: bytearray, err: bytearray) -> None:
        buffer = self._buffer
        offset = 0
        while len(buffer) - offset >= 8:
            stream, size = _FRAME_HEADER.unpack_from(buffer, offset)
            if len(buffer) - offset - 8 < size:
                break
            payload = buffer[offset + 8 : offset + 8 + size]
            (err if stream == 2 else out).extend(payload)
            offset += 8 + size
        if offset:
            del buffer[:offset]
