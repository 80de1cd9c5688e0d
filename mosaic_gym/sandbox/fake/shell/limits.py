"""Resource bounds of the fake shell: what one ``exec`` may cost in time and memory.

The fake shell runs inside the host process, so every quantity an agent controls must
be bounded before it is allocated, not after: a variable doubled 28 times is 3 GB, a
``tr`` range ending at ``\\377`` in surrogate-escaped text is tens of thousands of
characters per range, and nesting ``env env env ...`` recurses in Python. Each bound
below is checked where the quantity is produced; crossing one raises
:class:`~mosaic_gym.sandbox.fake.shell.streams.ShellLimit`, which stops the whole command line
and shows the agent ``[resource limit: ...]`` on stderr (exit status 1). It is never an
exception out of ``exec``: a hostile command is the agent's doing, not an infra error.

Sizes are chosen so that honest commands never meet them (a Linux ``ARG_MAX`` is 2 MiB;
real ``tr`` sets are bytes, at most 256 members) while the worst case stays in the tens
of megabytes of host memory. Work is charged to the virtual clock in proportion to what
was produced, so a bound on the clock is a bound on steps as well.

Regular expressions (grep) run on the ``regex`` package with a wall-clock ``timeout``:
it has no catastrophic cases on the patterns POSIX tools accept in practice, and the
timeout is the backstop for the ones it might. The wall time a match took is bounded by
:data:`REGEX_WALL_S` per command; the virtual clock is charged deterministically (by
input size), so an episode's observations never depend on the host's speed unless the
backstop fires.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import regex

from mosaic_gym.sandbox.fake.shell.streams import ShellLimit

if TYPE_CHECKING:
    from mosaic_gym.sandbox.fake.shell.interpreter import Shell

#: Bytes one variable's value may hold (after expansion).
MAX_VARIABLE_CHARS = 1024 * 1024
#: Characters of all arguments of one command together (Linux ARG_MAX).
MAX_ARGV_CHARS = 2 * 1024 * 1024
#: Words one command may have after expansion and globbing.
MAX_ARGV_WORDS = 131_072
#: Characters one ``$...`` expansion (or a here-document) may produce.
MAX_EXPANSION_CHARS = 4 * 1024 * 1024
#: How deeply ``${A:-${B:-...}}`` may nest.
MAX_EXPANSION_DEPTH = 32
#: How deeply commands that run commands (env, timeout, nohup, xargs, find -exec,
#: command) may nest.
MAX_COMMAND_NESTING = 64
#: How deeply shell functions may call each other (recursion included).
MAX_FUNCTION_DEPTH = 24
#: Function calls one command line may make in all (``f() { f | f; }`` is exponential).
MAX_FUNCTION_CALLS = 20_000
#: Loop iterations (``for``, ``while``, ``until``) one command line may run in all.
MAX_LOOP_ITERATIONS = 100_000
#: Bytes an archive or compressed stream may expand to (tar -x, gzip -d, zcat).
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
#: Characters a sed pattern or hold space may hold, and commands one sed may execute.
MAX_SED_SPACE = 16 * 1024 * 1024
MAX_SED_STEPS = 2_000_000
#: Members of one ``tr`` set after ranges and classes are expanded.
MAX_TR_SET = 4096
#: Entries (files and directories) the fake tree may hold.
MAX_TREE_ENTRIES = 20_000
#: Characters of one path (Linux PATH_MAX).
MAX_PATH_CHARS = 4096
#: Characters of one HTTP request (URL and body) that may leave the sandbox; larger ones
#: are refused before anything is sent (the leak detector scans whatever left, whole).
MAX_EGRESS_CHARS = 1_000_000
#: Characters of egress one episode may accumulate. Bounds the judge's memory and time: the
#: leak detector's worst measured cost is about 1.6 s of CPU per MB (random base64,
#: dense decimal codes: ``python benchmarks/bench_judge.py --worst``), so a
#: full episode takes at most about 15 s to judge (it was 32 MB: about a minute).
MAX_EPISODE_EGRESS_CHARS = 8 * 1024 * 1024
#: Wall seconds regular-expression matching may take in one command (backstop).
REGEX_WALL_S = 2.0
#: Virtual seconds charged per character produced by an expansion or a generator.
CHAR_COST_S = 2e-8


def limit(what: str) -> ShellLimit:
    """The error for crossing one bound; its text is what the agent sees."""
    return ShellLimit(f"[resource limit: {what}]")


def check_size(what: str, size: int, bound: int) -> None:
    """Raise the resource-limit error when ``size`` exceeds ``bound``."""
    if size > bound:
        raise limit(f"{what} of {size} characters exceeds {bound}")


def check_argv(count: int, size: int) -> None:
    """Bound one command's arguments together (``count`` words of ``size`` characters)."""
    check_size("argument list", size, MAX_ARGV_CHARS)
    if count > MAX_ARGV_WORDS:
        raise limit(f"argument list of {count} words exceeds {MAX_ARGV_WORDS}")


def nested(shell: Shell, what: str) -> _Nesting:
    """A context manager counting command nesting on ``shell`` (see MAX_COMMAND_NESTING)."""
    return _Nesting(shell, what)


class _Nesting:
    def __init__(self, shell: Shell, what: str) -> None:
        self.shell = shell
        self.what = what

    def __enter__(self) -> None:
        level = getattr(self.shell, "nesting", 0) + 1
        if level > MAX_COMMAND_NESTING:
            raise limit(f"{self.what} nested more than {MAX_COMMAND_NESTING} deep")
        self.shell.nesting = level

    def __exit__(self, *exc: object) -> None:
        self.shell.nesting -= 1


class Matcher:
    """A compiled pattern whose searches share one wall-clock allowance (per command)."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.deadline = time.monotonic() + REGEX_WALL_S

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _slow()
        return left

    def search(self, text: str) -> Any:
        try:
            return self.compiled.search(text, timeout=self._left())
        except TimeoutError:
            raise _slow() from None

    def finditer(self, text: str) -> Iterator[Any]:
        try:
            yield from self.compiled.finditer(text, timeout=self._left())
        except TimeoutError:
            raise _slow() from None


def _slow() -> ShellLimit:
    return limit(f"regular expression matching took longer than {REGEX_WALL_S:g} s")


def compile_regex(pattern: str, flags: int) -> Matcher:
    """Compile with the ``regex`` engine (``re``-compatible syntax, version 0).

    Raises regex.error for a bad pattern (callers turn it into a usage error).
    """
    return Matcher(regex.compile(pattern, flags | regex.VERSION0))


IGNORECASE = regex.IGNORECASE
DOTALL = regex.DOTALL
RegexError = regex.error
