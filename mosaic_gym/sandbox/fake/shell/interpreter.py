"""The fake shell's interpreter: lists, pipelines, redirections and dispatch.

Every file access goes through the sandbox's own methods (``read_file``,
``write_file``, ...), so the shell can neither touch the host nor change the tree
without bumping the sandbox's version. Time is virtual (see
:class:`~mosaic_gym.sandbox.fake.shell.streams.Budget`): nothing here sleeps or blocks.

Supported syntax: pipelines ``|``, lists ``;`` ``&&`` ``||`` (``&`` runs in the
foreground), ``!``, redirections ``< > >> 2> 2>> &> 2>&1 >&2 <<EOF``, quoting,
``$VAR ${VAR} ${VAR:-x} $? $$ ~``, ``$(...)``, backquotes, ``$((...))``, globs
``* ? [...]``, assignments, comments, and the compound commands ``( ... )``,
``{ ...; }``, ``if``, ``for``, ``while``, ``until`` (with ``break``/``continue``) and
``case``, each with its own redirections, and functions with positional parameters.
Not supported (clear error, exit 2): the ``function`` keyword, ``select``, ``[[``,
background jobs.

Each element of a multi-command pipeline runs isolated, as in a subshell: variables,
cwd and options it changes are restored afterwards (``echo x | read v`` leaves ``v``
unset, as in ``sh``). Loops charge the virtual clock per iteration and count towards
:data:`~mosaic_gym.sandbox.fake.shell.limits.MAX_LOOP_ITERATIONS` per command line.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from mosaic_gym.sandbox.base import HOME, ExecResult
from mosaic_gym.sandbox.fake.shell.expand import expand_plain, expand_text, expand_word
from mosaic_gym.sandbox.fake.shell.limits import (
    MAX_FUNCTION_CALLS,
    MAX_FUNCTION_DEPTH,
    MAX_LOOP_ITERATIONS,
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
    Input,
    ShellBreak,
    ShellExit,
    ShellLimit,
    ShellReturn,
    ShellTimeout,
    StreamIO,
    UsageError,
    describe,
    encode,
)
from mosaic_gym.sandbox.fake.shell.syntax import (
    AndOr,
    Case,
    Command,
    For,
    FunctionDef,
    Group,
    HereDoc,
    If,
    Loop,
    Node,
    Pipeline,
    Redirect,
    Script,
    ShellSyntaxError,
    ShellUnsupported,
    Subshell,
    SyntaxTooDeep,
    Word,
    parse,
)

_T = TypeVar("_T")
_A = TypeVar("_A")

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
        #: Loops enclosing the running command (``break`` outside one does nothing).
        self.loops = 0
        #: Conditions being evaluated (``if``/``while`` tests): ``set -e`` ignores them.
        self.conditions = 0
        #: Shell functions by name, the positional parameters, and the ``local``
        #: variables of each running call (name -> value before the call, None: unset).
        self.functions: dict[str, FunctionDef] = dict(parent.functions) if parent else {}
        self.args: list[str] = list(parent.args) if parent else []
        self.frames: list[dict[str, str | None]] = []

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
        except ShellReturn as exc:  # defensive: every call catches its own return
            status = exc.code
        except ShellBreak:  # defensive: a break with no loop left to end
            status = 0
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
        except SyntaxTooDeep as exc:
            raise limit(str(exc)) from None
        status = 0
        try:
            status = self.run_list(script, io)
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
    def run_list(self, script: Script, io: StreamIO) -> int:
        """Run a list of and-or items; ``set -e`` stops at a failure outside conditions."""
        status = 0
        for item in script:
            status, final = self.run_and_or(item, io)
            if self.errexit and status != 0 and final and not self.conditions:
                raise ShellExit(status)
        return status

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
            child = StreamIO(self.budget, data, out, io.err, io.cursor if index == 0 else None,
                             io.cap if index == last else 0)
            if last:
                statuses.append(self.isolated(self.run_node, command, child))
            else:
                statuses.append(self.run_node(command, child))
            data = bytes(out)
        status = statuses[-1]
        if self.pipefail:
            status = next((s for s in reversed(statuses) if s), 0)
        if pipeline.negate:
            status = int(status == 0)
        self.status = status
        return status

    def run_node(self, node: Node, io: StreamIO) -> int:
        """Run one element of a pipeline: a simple or a compound command."""
        if isinstance(node, Command):
            return self.run_command(node, io)
        self.budget.charge(COMMAND_COST_S)
        if not node.redirects:
            if io.cursor is None and io.stdin:
                io = StreamIO(self.budget, io.stdin, io.out, io.err, Input(io.stdin), io.cap)
            self.status = self.run_compound(node, io)
            return self.status
        targets: dict[int, Target] = {1: ("buffer", io.out), 2: ("buffer", io.err)}
        start = io.cursor.rest() if io.cursor is not None else io.stdin
        stdin = start
        try:
            for redirect in node.redirects:
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
            if self.pending_err:
                io.err += self.pending_err
                self.pending_err.clear()
        cursor = io.cursor if stdin is start and io.cursor is not None else Input(stdin)
        out, err = bytearray(), bytearray()
        try:
            cap = io.cap if targets[1][1] is io.out else 0
            status = self.run_compound(node, StreamIO(self.budget, stdin, out, err, cursor, cap))
        finally:
            failure = self.deliver(targets[1], out)
            if failure:
                err += encode(f"sh: write error: {failure}\n")
            self.deliver(targets[2], err)
        self.status = 1 if failure else status
        return self.status

    def run_compound(self, node: Node, io: StreamIO) -> int:
        try:
            return self._compound(node, io)
        except ShellSyntaxError as exc:  # a bad expansion in a for list or case word
            io.error(f"sh: {exc}")
            return 1

    def _compound(self, node: Node, io: StreamIO) -> int:
        if isinstance(node, FunctionDef):
            self.functions[node.name] = node
            return 0
        if isinstance(node, Group):
            return self.run_list(node.body, io)
        if isinstance(node, Subshell):
            return self.isolated(self._subshell, node.body, io)
        if isinstance(node, If):
            for condition, body in node.clauses:
                if self.run_condition(condition, io) == 0:
                    return self.run_list(body, io)
            return self.run_list(node.otherwise, io) if node.otherwise else 0
        if isinstance(node, Loop):
            return self.run_loop(node, io)
        if isinstance(node, For):
            return self.run_for(node, io)
        assert isinstance(node, Case)
        return self.run_case(node, io)

    def _subshell(self, body: Script, io: StreamIO) -> int:
        self.loops = 0
        try:
            return self.run_list(body, io)
        except (ShellExit, ShellReturn) as exc:  # both end only the subshell
            return exc.code

    def isolated(self, action: Callable[[_A, StreamIO], int], node: _A, io: StreamIO) -> int:
        """``action(node, io)`` as in a subshell: variables, cwd and options come back."""
        env, cwd, loops = dict(self.env), self.cwd, self.loops
        options = (self.errexit, self.pipefail)
        functions, args = dict(self.functions), self.args
        self.loops = 0  # break/continue cannot reach loops outside a subshell
        try:
            return action(node, io)
        finally:
            self.env, self.cwd, self.loops = env, cwd, loops
            self.errexit, self.pipefail = options
            self.functions, self.args = functions, args

    def run_condition(self, condition: Script, io: StreamIO) -> int:
        self.conditions += 1
        try:
            return self.run_list(condition, io)
        finally:
            self.conditions -= 1

    def iteration(self) -> None:
        """Pay for one loop iteration; past the bound, the command line stops."""
        budget = self.budget
        budget.iterations += 1
        if budget.iterations > MAX_LOOP_ITERATIONS:
            raise limit(f"loops ran more than {MAX_LOOP_ITERATIONS} iterations")
        budget.charge(COMMAND_COST_S)

    def run_body(self, body: Script, io: StreamIO) -> tuple[int, bool]:
        """One loop body: (status, whether the loop must stop)."""
        self.loops += 1
        try:
            return self.run_list(body, io), False
        except ShellBreak as exc:
            if exc.levels > 1:
                exc.levels -= 1
                raise
            return 0, not exc.resume
        finally:
            self.loops -= 1

    def run_loop(self, node: Loop, io: StreamIO) -> int:
        status = 0
        while True:
            self.iteration()
            self.loops += 1
            try:
                tested = self.run_condition(node.condition, io)
            except ShellBreak as exc:  # break in a condition ends this loop too
                if exc.levels > 1:
                    exc.levels -= 1
                    raise
                if exc.resume:
                    continue
                return 0
            finally:
                self.loops -= 1
            if (tested == 0) == node.until:
                return status
            status, stop = self.run_body(node.body, io)
            if stop:
                return status

    def run_for(self, node: For, io: StreamIO) -> int:
        values: list[str] = []
        size = 0
        if node.words is None:
            values = list(self.args)
        for word in node.words or []:
            fields = expand_word(self, word)
            values.extend(fields)
            size += sum(len(field) + 1 for field in fields)
            check_argv(len(values), size)
        if self.pending_err:
            io.err += self.pending_err
            self.pending_err.clear()
        status = 0
        for value in values:
            self.iteration()
            self.env[node.name] = value
            status, stop = self.run_body(node.body, io)
            if stop:
                break
        return status

    def run_case(self, node: Case, io: StreamIO) -> int:
        subject = expand_plain(self, node.word)
        for patterns, body in node.items:
            if any(fnmatch.fnmatchcase(subject, self.pattern(word)) for word in patterns):
                return self.run_list(body, io)
        return 0

    def pattern(self, word: Word) -> str:
        """A ``case`` pattern: expanded, with its quoted parts matching literally."""
        parts = []
        for segment in word.segments:
            text = expand_plain(self, Word((segment,)))
            parts.append(text if segment.kind == "bare" else _escape_glob(text))
        return "".join(parts)

    def run_command(self, command: Command, io: StreamIO) -> int:
        self.budget.charge(COMMAND_COST_S)
        targets: dict[int, Target] = {1: ("buffer", io.out), 2: ("buffer", io.err)}
        cursor = io.cursor
        stdin = start = cursor.rest() if cursor is not None else io.stdin
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
        if stdin is not start:
            cursor = None
        try:
            cap = io.cap if targets[1][1] is io.out else 0
            status = self.dispatch(argv, StreamIO(self.budget, stdin, out, err, cursor, cap))
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
        defined = self.functions.get(name) if self.functions else None
        if defined is not None:
            return self.call(defined, argv, io)
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

    def call(self, function: FunctionDef, argv: list[str], io: StreamIO) -> int:
        """Run a shell function with ``argv[1:]`` as its positional parameters."""
        if len(self.frames) >= MAX_FUNCTION_DEPTH:
            raise limit(f"functions nested more than {MAX_FUNCTION_DEPTH} deep")
        self.budget.calls += 1
        if self.budget.calls > MAX_FUNCTION_CALLS:
            raise limit(f"more than {MAX_FUNCTION_CALLS} function calls")
        saved_args, loops = self.args, self.loops
        self.args, self.loops = argv[1:], 0
        self.frames.append({})
        try:
            return self.run_node(function.body, io)
        except ShellReturn as exc:
            return exc.code
        finally:
            for variable, old in self.frames.pop().items():
                if old is None:
                    self.env.pop(variable, None)
                else:
                    self.env[variable] = old
            self.args, self.loops = saved_args, loops

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


def _escape_glob(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


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
