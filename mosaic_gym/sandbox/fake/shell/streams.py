"""What the fake shell's commands share: streams, limits, errors and option parsing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mosaic_gym.sandbox.fake.shell.interpreter import Shell

#: No single stream (a pipe, stdout, a redirected file) may grow past this.
MAX_STREAM_BYTES = 64 * 1024 * 1024
#: Virtual cost of running one command, and of moving one byte (50 MB/s).
COMMAND_COST_S = 1e-3
BYTE_COST_S = 2e-8
#: How deeply ``sh -c``, ``eval``, ``source`` and scripts may nest.
MAX_DEPTH = 8


class ShellTimeout(Exception):
    """The virtual clock passed the deadline (exit status 124)."""

    def __init__(self, deadline: float) -> None:
        super().__init__(deadline)
        self.deadline = deadline


class ShellLimit(Exception):
    """A stream grew past :data:`MAX_STREAM_BYTES`; the whole command line stops."""


class ShellBreak(Exception):
    """``break N`` (``continue`` when ``resume``): unwinds N enclosing loops."""

    def __init__(self, levels: int, *, resume: bool = False) -> None:
        super().__init__(levels)
        self.levels = levels
        self.resume = resume


class ShellReturn(Exception):
    """``return N`` (ends the innermost function call)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class ShellExit(Exception):
    """``exit N`` (stops the innermost shell)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class UsageError(Exception):
    """Bad options or operands; printed as ``NAME: message`` with ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class Budget:
    """The virtual clock standing in for wall time; shared by nested shells."""

    def __init__(self, timeout: float) -> None:
        self.clock = 0.0
        self.deadline = max(0.0, float(timeout))
        #: Loop iterations run so far by this command line (all nested shells).
        self.iterations = 0
        #: Shell function calls made so far by this command line.
        self.calls = 0

    def charge(self, seconds: float) -> None:
        """Advance the clock; raise ShellTimeout once it passes the deadline."""
        self.clock += seconds
        if self.clock > self.deadline:
            raise ShellTimeout(self.deadline)


class Input:
    """Standard input shared by the commands of a compound command, so that ``read``
    in ``while read line; do ...; done < file`` consumes it line by line. Only ``read``
    advances it; other commands see what is left without consuming it."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def rest(self) -> bytes:
        return self.data[self.pos :] if self.pos else self.data


class StreamIO:
    """One command's standard streams: ``stdin`` bytes in, ``out``/``err`` buffers out;
    ``cursor`` is the shared input of an enclosing compound command, if any, and ``cap``
    the most bytes ``out`` may hold (lower inside a command substitution)."""

    __slots__ = ("budget", "stdin", "out", "err", "cursor", "cap")

    def __init__(
        self,
        budget: Budget,
        stdin: bytes,
        out: bytearray,
        err: bytearray,
        cursor: Input | None = None,
        cap: int = 0,
    ) -> None:
        self.budget = budget
        self.stdin = stdin
        self.out = out
        self.err = err
        self.cursor = cursor
        self.cap = cap or MAX_STREAM_BYTES

    def write(self, data: bytes | str) -> None:
        """Append to stdout (str is UTF-8 encoded), charging the budget."""
        raw = encode(data) if isinstance(data, str) else data
        self.budget.charge(len(raw) * BYTE_COST_S)
        if len(self.out) + len(raw) > self.cap:
            if self.cap < MAX_STREAM_BYTES:
                raise ShellLimit(f"[resource limit: command substitution output exceeds "
                                 f"{self.cap} bytes]")
            raise ShellLimit(f"output exceeds {MAX_STREAM_BYTES} bytes")
        self.out += raw

    def error(self, message: str) -> None:
        """Write one line to stderr."""
        if len(self.err) + len(message) > MAX_STREAM_BYTES:
            raise ShellLimit(f"error output exceeds {MAX_STREAM_BYTES} bytes")
        self.err += encode(message + "\n")


#: A command implementation: (shell, argv with argv[0] the name, streams) -> status.
CommandFn = Callable[["Shell", list[str], StreamIO], int]


def decode(data: bytes) -> str:
    """Bytes to text without losing undecodable bytes (they round-trip on encode)."""
    return data.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    """Text to bytes; escaped bytes (from :func:`decode`) come back as they were, and
    any other lone surrogate becomes ``?``."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def describe(exc: OSError) -> str:
    """The coreutils wording of an OS error ("No such file or directory")."""
    return exc.strerror or str(exc)


@dataclass
class Options:
    """Parsed command-line options: short letters, their values, and operands."""

    flags: set[str] = field(default_factory=set)
    values: dict[str, list[str]] = field(default_factory=dict)
    operands: list[str] = field(default_factory=list)

    def __contains__(self, letter: object) -> bool:
        return letter in self.flags or letter in self.values

    def value(self, letter: str, default: str | None = None) -> str | None:
        found = self.values.get(letter)
        return found[-1] if found else default

    def all(self, letter: str) -> list[str]:
        return self.values.get(letter, [])


def parse_options(
    args: list[str],
    flags: str = "",
    valued: str = "",
    long: Mapping[str, str] | None = None,
    *,
    stop_at_operand: bool = False,
    usage_status: int = 1,
) -> Options:
    """A small ``getopt``: combined short flags (``-rf``), values (``-n5``, ``-n 5``),
    long names mapped to letters (``--recursive`` -> ``r``, ``--lines=5``), ``--``.

    Raises UsageError with GNU wording for unknown options or missing values.
    """
    long = long or {}
    options = Options()
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            options.operands.extend(args[index:])
            break
        if arg.startswith("--"):
            name, has_value, value = arg.partition("=")
            letter = long.get(name)
            if letter is None:
                raise UsageError(f"unrecognized option '{arg}'", usage_status)
            if letter in valued:
                if not has_value:
                    if index >= len(args):
                        raise UsageError(f"option '{name}' requires an argument", usage_status)
                    value, index = args[index], index + 1
                options.values.setdefault(letter, []).append(value)
            else:
                options.flags.add(letter)
        elif arg.startswith("-") and len(arg) > 1:
            for position, letter in enumerate(arg[1:], start=1):
                if letter in valued:
                    value = arg[position + 1 :]
                    if not value:
                        if index >= len(args):
                            raise UsageError(
                                f"option requires an argument -- '{letter}'", usage_status
                            )
                        value, index = args[index], index + 1
                    options.values.setdefault(letter, []).append(value)
                    break
                if letter not in flags:
                    raise UsageError(f"invalid option -- '{letter}'", usage_status)
                options.flags.add(letter)
        else:
            options.operands.append(arg)
            if stop_at_operand:
                options.operands.extend(args[index:])
                break
    return options
