"""The fake shell's interpreter: lists, pipelines, redirections and dispatch.

Every file access goes through the sandbox's own methods (``read_file``,
``write_file``, ...), so the shell can neither touch the host nor change the tree
without bumping the sandbox's version. Time is virtual (see
:class:`~mosaic_gym.sandbox.fake.shell.streams.Budget`): nothing here sleeps or blocks.

Supported syntax: pipelines ``|``, lists ``;`` ``&&`` ``||`` (``&`` runs in the
foreground), ``!``, redirections ``< > >> 2> 2>> &> 2>&1 >&2 <<EOF``, quoting,
``$VAR ${VAR} ${VAR:-x} $? $$ ~``, globs ``* ? [...]``, assignments, comments.
Not supported (clear error, exit 2): control flow, subshells, ``$(...)``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from mosaic_gym.sandbox.base import HOME, ExecResult
from mosaic_gym.sandbox.fake.shell.expand import expand_plain, expand_text, expand_word
from mosaic_gym.sandbox.fake.shell.limits import (
    MAX_VARIABLE_CHARS,
    check_argv,
    check_size,
    limit,
    nested,
)
from mosaic_gym.sandbox.fake.shell.registry import resolve_command, unsupported
from mosaic_gym.sandbox.fake.shell.streams import (
    BYTE_COST_S,
    COMMAND_COST_S,
    MAX_STREAM_BYTES,
    Budget,
    CommandFn,
    ShellExit,
    ShellLimit,
    ShellTimeout,
    StreamIO,
    UsageError,
    describe,
    encode,
)
from mosaic_gym.sandbox.fake.shell.syntax import (
    AndOr,
    Command,
    HereDoc,
    Pipeline,
    Redirect,
    ShellSyntaxError,
    ShellUnsupported,
    parse,
)

_T = TypeVar("_T")

if TYPE_CHECKING:
    from mosaic_gym.sandbox.fake import FakeSandbox

MAX_COMMAND_CHARS = 256 * 1024
DEFAULT_ENV = {
    "HOME": HOME,
    "USER": "user",
    "LOGNAME": "user",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "SHELL": "/bin/sh",
    "LANG": "C.UTF-8",
    "HOSTNAME": "sandbox",
}

# A stream target: ("buffer", bytearray) | ("file", absolute path) | ("null", None).
Target = tuple[str, object]
NULL: Target = ("null", None)


class Shell:
    """One ``sh`` process: cwd, variables and options over a sandbox's tree."""

    budget: Budget
    depth: int
    nesting: int
    cwd: str
    env: dict[str, str]

    def __init__(
        self,
        sandbox: FakeSandbox,
        *,
        timeout: float,
        output_cap: int,
        parent: Shell | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.output_cap = max(0, output_cap)
        self.budget = parent.budget if parent else Budget(timeout)
        self.depth = parent.depth + 1 if parent else 0
        #: Commands running commands (env, xargs, ...) below this one: see limits.
        self.nesting = parent.nesting if parent else 0
        #: ``${...}`` expansions in progress (nested defaults): see limits.
        self.expanding = 0
        #: Standard error of command substitutions, and the last one's status.
        self.pending_err = bytearray()
        self.substitution_status: int | None = None
        self.cwd = parent.cwd if parent else HOME
        self.env = dict(parent.env) if parent else dict(DEFAULT_ENV, PWD=HOME)
        self.status = 0
        self.errexit = False
        self.pipefail = False

    # -- entry points ----------------------------------------------------
    def run(self, command: str) -> ExecResult:
        """Run a whole command line; the result the sandbox returns from ``exec``."""
        out, err = bytearray(), bytearray()
        io = StreamIO(self.budget, b"", out, err)
        timed_out = False
        try:
            status = self.run_source(command, io)
        except ShellTimeout:
            status, timed_out = 124, True
        except ShellLimit as exc:
            status = 1
            err += encode(f"mosaic: {exc}\n")
        except RecursionError:
            # Deep syntax no bound above caught: still the agent's doing, not ours.
            status = 1
            err += encode(f"mosaic: {limit('command nested too deeply')}\n")
        return _result(status, out, err, timed_out, self.output_cap)

    def run_source(self, source: str, io: StreamIO, *, catch_exit: bool = True) -> int:
        """Parse and run a script with ``io`` as its streams; returns the exit status."""
        if len(source) > MAX_COMMAND_CHARS:
            io.error(
                f"mosaic: command too long ({len(source)} characters, limit {MAX_COMMAND_CHARS})"
            )
            return 2
        try:
            script = parse(source)
        except ShellSyntaxError as exc:
            io.error(f"sh: 1: {exc}")
            return 2
        except ShellUnsupported as exc:
            io.error(f"mosaic: unsupported shell syntax: {exc}")
            return 2
        status = 0
        try:
            for item in script:
                status, final = self.run_and_or(item, io)
                if self.errexit and status != 0 and final:
                    break
        except ShellExit as exc:
            if not catch_exit:
                raise
            status = exc.code
        self.status = status
        return status

    def run_argv(self, argv: list[str], io: StreamIO) -> int:
        """Run one already-expanded command (used by xargs, find -exec, env, timeout)."""
        self.budget.charge(COMMAND_COST_S)
        with nested(self, posixpath.basename(argv[0]) if argv else "command"):
            return self.dispatch(argv, io)

    # -- structure -------------------------------------------------------
    def run_and_or(self, node: AndOr, io: StreamIO) -> tuple[int, bool]:
        """Status of an ``&&``/``||`` list, and whether its last pipeline ran."""
        status = self.run_pipeline(node.first, io)
        final = not node.rest
        for index, (op, pipeline) in enumerate(node.rest):
            if (op == "&&") == (status == 0):
                status = self.run_pipeline(pipeline, io)
                final = index == len(node.rest) - 1
        return status, final

    def run_pipeline(self, pipeline: Pipeline, io: StreamIO) -> int:
        data = io.stdin
        statuses: list[int] = []
        last = len(pipeline.commands) - 1
        for index, command in enumerate(pipeline.commands):
            out = io.out if index == last else bytearray()
            statuses.append(self.run_command(command, StreamIO(self.budget, data, out, io.err)))
            data = bytes(out)
        status = statuses[-1]
        if self.pipefail:
            status = next((s for s in reversed(statuses) if s), 0)
        if pipeline.negate:
            status = int(status == 0)
        self.status = status
        return status

    def run_command(self, command: Command, io: StreamIO) -> int:
        self.budget.charge(COMMAND_COST_S)
        targets: dict[int, Target] = {1: ("buffer", io.out), 2: ("buffer", io.err)}
        stdin = io.stdin
        self.substitution_status = None
        try:
            argv: list[str] = []
            size = 0
            for word in command.words:
                fields = expand_word(self, word)
                argv.extend(fields)
                size += sum(len(field) + 1 for field in fields)
                check_argv(len(argv), size)  # word by word: bounded while it grows
            values = [(name, expand_plain(self, word)) for name, word in command.assignments]
            for name, value in values:
                check_size(f"variable {name}", len(value), MAX_VARIABLE_CHARS)
            for redirect in command.redirects:
                stdin = self.redirect(redirect, targets, stdin)
        except ShellSyntaxError as exc:
            io.error(f"sh: {exc}")
            self.status = 1
            return 1
        except OSError as exc:
            io.error(f"sh: {exc.filename}: {describe(exc)}")
            self.status = 1
            return 1
        finally:
            if self.pending_err:  # what substitutions printed on stderr, in order
                io.err += self.pending_err
                self.pending_err.clear()
        if not argv:
            self.env.update(values)
            self.status = self.substitution_status or 0
            return self.status
        saved = {name: self.env.get(name) for name, _ in values}
        self.env.update(values)
        out, err = bytearray(), bytearray()
        try:
            status = self.dispatch(argv, StreamIO(self.budget, stdin, out, err))
        finally:
            for name, old in saved.items():
                if old is None:
                    self.env.pop(name, None)
                else:
                    self.env[name] = old
            failure = self.deliver(targets[1], out)
            if failure:
                err += encode(f"{posixpath.basename(argv[0])}: write error: {failure}\n")
            self.deliver(targets[2], err)
        self.status = 1 if failure else status
        return self.status

    def dispatch(self, argv: list[str], io: StreamIO) -> int:
        """Run a builtin or command by name; unknown names give 127."""
        name = argv[0]
        function: CommandFn | None = resolve_command(self, name)
        if function is None:
            return unsupported(self, argv, io)
        try:
            return function(self, argv, io)
        except UsageError as exc:
            io.error(f"{posixpath.basename(name)}: {exc}")
            return exc.status
        except OSError as exc:
            io.error(f"{posixpath.basename(name)}: {exc.filename}: {describe(exc)}")
            return 1

    # -- redirection -----------------------------------------------------
    def redirect(self, redirect: Redirect, targets: dict[int, Target], stdin: bytes) -> bytes:
        """Apply one redirection; returns the (possibly new) stdin."""
        if isinstance(redirect.target, HereDoc):
            body = redirect.target.body
            return encode(expand_text(self, body) if redirect.target.expand else body)
        fields = expand_word(self, redirect.target)
        if len(fields) != 1:
            raise ShellSyntaxError(f"{redirect.target.raw}: ambiguous redirect")
        name, op, fd = fields[0], redirect.op, redirect.fd
        if op in ("<&", ">&") and ((name.isascii() and name.isdigit()) or name == "-"):
            if name == "-":
                targets[fd or 1] = NULL
            elif fd in (1, 2) and int(name) in (1, 2):
                targets[fd] = targets[int(name)]
            return stdin
        if op in ("<", "<&"):
            return self.read_path(name, stdin) if fd == 0 else stdin
        target = self.open_output(name, op in (">>", "&>>"), targets)
        for number in (1, 2) if fd is None or op == ">&" else (fd,):
            if number in (1, 2):
                targets[number] = target
        return stdin

    def open_output(self, name: str, append: bool, targets: dict[int, Target]) -> Target:
        """Create or truncate a redirection's file now, as ``sh`` does before running."""
        special = {"/dev/null": NULL, "/dev/tty": NULL}
        if name in special:
            return special[name]
        if name in ("/dev/stdout", "/dev/stderr"):
            return targets[1 if name == "/dev/stdout" else 2]
        path = self.resolve(name)
        if append and self.sandbox.exists(path):
            self._with_name(name, lambda: self.sandbox.append_file(path, b""))
        else:
            self._with_name(name, lambda: self.sandbox.write_file(path, b""))
        return ("file", path)

    def deliver(self, target: Target, data: bytearray) -> str | None:
        """Send a finished command's output to its target; returns a write error, if any."""
        if not data:
            return None
        kind, value = target
        if kind == "buffer":
            assert isinstance(value, bytearray)
            if len(value) + len(data) > MAX_STREAM_BYTES:
                raise ShellLimit(f"output exceeds {MAX_STREAM_BYTES} bytes")
            value += data
        elif kind == "file":
            assert isinstance(value, str)
            # The real shell writes through an open descriptor; a file removed by the
            # command itself is not recreated.
            if self.sandbox.exists(value):
                try:
                    self.sandbox.append_file(value, bytes(data))
                except OSError as exc:
                    return describe(exc)
        return None

    # -- paths -----------------------------------------------------------
    def resolve(self, name: str) -> str:
        """An absolute, normalised path for ``name`` relative to the cwd."""
        path = posixpath.normpath(posixpath.join(self.cwd, name))
        return "/" + path.lstrip("/")

    def read_path(self, name: str, stdin: bytes = b"") -> bytes:
        """Read a file named by the user (``-``/``/dev/stdin`` is stdin); charges the budget.

        Raises OSError whose ``filename`` is ``name`` as typed.
        """
        if name in ("-", "/dev/stdin"):
            return stdin
        if name in ("/dev/null", "/dev/tty"):
            return b""
        data = self._with_name(name, lambda: self.sandbox.read_file(self.resolve(name)))
        self.budget.charge(len(data) * BYTE_COST_S)
        return data

    def write_path(self, name: str, data: bytes, io: StreamIO, *, append: bool = False) -> None:
        """Write a file named by the user (``/dev/null`` discards, ``-`` is stdout)."""
        if name in ("/dev/null", "/dev/tty"):
            return
        if name in ("-", "/dev/stdout"):
            io.write(data)
            return
        path = self.resolve(name)
        self.budget.charge(len(data) * BYTE_COST_S)
        if append:
            self._with_name(name, lambda: self.sandbox.append_file(path, data))
        else:
            self._with_name(name, lambda: self.sandbox.write_file(path, data))

    @staticmethod
    def _with_name(name: str, action: Callable[[], _T]) -> _T:
        """Run ``action`` and make any OSError name the path as the user typed it."""
        try:
            return action()
        except OSError as exc:
            raise OSError(exc.errno, describe(exc), name) from None


def _result(status: int, out: bytearray, err: bytearray, timed_out: bool, cap: int) -> ExecResult:
    stdout, cut_out = _cap(out, cap)
    stderr, cut_err = _cap(err, cap)
    return ExecResult(status, stdout, stderr, timed_out, cut_out or cut_err)


def _cap(data: bytearray, cap: int) -> tuple[str, bool]:
    """Decode at most ``cap`` bytes, never cutting a UTF-8 character in two."""
    if len(data) <= cap:
        return data.decode("utf-8", "replace"), False
    end = cap
    while end > 0 and data[end] & 0xC0 == 0x80:
        end -= 1
    return data[:end].decode("utf-8", "replace"), True
