"""``find`` and ``test`` / ``[`` for the fake shell: the commands that evaluate
small expressions over the tree."""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from mosaic_gym.sandbox.base import FileEntry
from mosaic_gym.sandbox.fake.shell.streams import CommandFn, StreamIO, UsageError, describe

if TYPE_CHECKING:
    from mosaic_gym.sandbox.fake.shell.interpreter import Shell

# One walked path: (path as printed, entry, depth below its starting point).
Item = tuple[str, FileEntry, int]
Predicate = Callable[[Item], bool]

_TESTS_WITH_ARGUMENT = frozenset(
    {"-name", "-iname", "-path", "-wholename", "-ipath", "-type", "-size", "-perm", "-newer"}
)


def find(shell: Shell, argv: list[str], io: StreamIO) -> int:
    """``find [PATH...] [EXPR]``: -name -iname -path -type f|d -size -empty -maxdepth
    -mindepth, ``!``/-not, -a, actions -print -delete -exec CMD {} ; (or +)."""
    args = argv[1:]
    roots: list[str] = []
    while args and not args[0].startswith("-") and args[0] not in ("!", "(", ")"):
        roots.append(args.pop(0))
    plan = _FindPlan(shell, io, args)
    status = 0
    items: list[Item] = []
    for root in roots or ["."]:
        try:
            items.extend(_walk(shell, io, root, plan.maxdepth))
        except OSError as exc:
            io.error(f"find: '{root}': {describe(exc)}")
            status = 1
    for item in items:
        if item[2] >= plan.mindepth and shell.sandbox.exists(item[1].path):
            plan.evaluate(item)
    return plan.finish() or status or plan.status


def _walk(shell: Shell, io: StreamIO, root: str, maxdepth: int) -> list[Item]:
    """Pre-order walk of ``root`` (sorted by name); unreadable directories are reported."""
    entry = shell.sandbox.stat(shell.resolve(root))
    items: list[Item] = []
    pending: list[Item] = [(root, entry, 0)]
    while pending:
        item = pending.pop()
        items.append(item)
        shown, entry, depth = item
        if not entry.is_dir or depth >= maxdepth:
            continue
        try:
            children = shell.sandbox.list_dir(entry.path)
        except OSError as exc:
            io.error(f"find: '{shown}': {describe(exc)}")
            continue
        shell.budget.charge(len(children) * 1e-6)
        prefix = shown if shown.endswith("/") else shown + "/"
        pending.extend((prefix + c.name, c, depth + 1) for c in reversed(children))
    return items


class _FindPlan:
    """The parsed expression: an AND of (possibly negated) tests and actions."""

    def __init__(self, shell: Shell, io: StreamIO, args: list[str]) -> None:
        self.shell, self.io = shell, io
        self.maxdepth, self.mindepth = 1 << 30, 0
        self.steps: list[tuple[bool, Predicate]] = []
        self.has_action = False
        self.to_delete: list[str] = []
        self.batches: list[tuple[list[str], list[str]]] = []
        self.status = 0
        negate = False
        while args:
            token = args.pop(0)
            if token in ("!", "-not"):
                negate = not negate
                continue
            if token in ("-a", "-and"):
                continue
            if token in ("-o", "-or", "(", ")", ","):
                raise UsageError(f"'{token}' is not supported by this find")
            if token in ("-maxdepth", "-mindepth"):
                value = args.pop(0) if args else ""
                if not (value.isascii() and value.isdigit()):
                    raise UsageError(f"{token}: invalid argument '{value}'")
                setattr(self, token[1:], int(value))
                continue
            if token in _TESTS_WITH_ARGUMENT and not args:
                raise UsageError(f"missing argument to '{token}'")
            self.steps.append((negate, self._predicate(token, args)))
            negate = False

    def _predicate(self, token: str, args: list[str]) -> Predicate:
        if token in ("-name", "-iname"):
            pattern = args.pop(0)
            fold = token == "-iname"
            return lambda item: fnmatch.fnmatchcase(
                _base(item[0]).lower() if fold else _base(item[0]),
                pattern.lower() if fold else pattern,
            )
        if token in ("-path", "-wholename", "-ipath"):
            pattern = args.pop(0)
            return lambda item: fnmatch.fnmatchcase(item[0], pattern)
        if token == "-type":
            kind = args.pop(0)
            if kind not in ("f", "d", "l"):
                raise UsageError(f"Unknown argument to -type: {kind}")
            return lambda item: (
                (item[1].is_dir and kind == "d") or (not item[1].is_dir and kind == "f")
            )
        if token == "-empty":
            return lambda item: self._is_empty(item[1])
        if token == "-size":
            return _size_test(args.pop(0))
        if token == "-perm":
            text = args.pop(0).lstrip("-/")
            if not re.fullmatch(r"[0-7]{1,4}", text):
                raise UsageError(f"invalid mode '{text}'")
            mode = int(text, 8)
            return lambda item: item[1].mode & mode == mode
        if token == "-newer":
            args.pop(0)
            return lambda item: False  # times are not modelled: nothing is newer
        if token in ("-print", "-print0", "-ls"):
            self.has_action = True
            end = "\0" if token == "-print0" else "\n"

            def print_path(item: Item) -> bool:
                self.io.write(item[0] + end)
                return True

            return print_path
        if token == "-delete":
            self.has_action = True

            def delete_later(item: Item) -> bool:
                self.to_delete.append(item[1].path)
                return True

            return delete_later
        if token in ("-exec", "-execdir", "-ok"):
            self.has_action = True
            return self._exec(args)
        raise UsageError(f"unknown predicate '{token}'")

    def _exec(self, args: list[str]) -> Predicate:
        command: list[str] = []
        while args and args[0] not in (";", "+"):
            command.append(args.pop(0))
        if not args or not command:
            raise UsageError("missing argument to '-exec'")
        if args.pop(0) == "+":
            batch: tuple[list[str], list[str]] = (command, [])
            self.batches.append(batch)

            def collect(item: Item) -> bool:
                batch[1].append(item[0])
                return True

            return collect
        return lambda item: self._run([arg.replace("{}", item[0]) for arg in command]) == 0

    def _run(self, argv: list[str]) -> int:
        return self.shell.run_argv(argv, StreamIO(self.shell.budget, b"", self.io.out, self.io.err))

    def _is_empty(self, entry: FileEntry) -> bool:
        if not entry.is_dir:
            return entry.size == 0
        try:
            return not self.shell.sandbox.list_dir(entry.path)
        except OSError:
            return False

    def evaluate(self, item: Item) -> None:
        for negate, predicate in self.steps:
            if predicate(item) == negate:
                return
        if not self.has_action:
            self.io.write(item[0] + "\n")

    def finish(self) -> int:
        """Run batched ``-exec ... +`` and ``-delete`` (deepest first)."""
        status = 0
        for command, paths in self.batches:
            if paths:
                status |= int(self._run([*[a for a in command if a != "{}"], *paths]) != 0)
        for path in reversed(self.to_delete):
            try:
                self.shell.sandbox.delete(path, recursive=False)
            except OSError as exc:
                self.io.error(f"find: cannot delete '{path}': {describe(exc)}")
                status = 1
        return status


def _base(path: str) -> str:
    return posixpath.basename(path.rstrip("/")) or path


def _size_test(spec: str) -> Predicate:
    match = re.fullmatch(r"([+-]?)(\d+)([ckMGb]?)", spec)
    if match is None:
        raise UsageError(f"invalid argument '{spec}' to '-size'")
    sign, number, unit = match.group(1), int(match.group(2)), match.group(3) or "b"
    scale = {"c": 1, "k": 1024, "M": 1 << 20, "G": 1 << 30, "b": 512}[unit]

    def test(item: Item) -> bool:
        size = -(-item[1].size // scale)
        return size > number if sign == "+" else size < number if sign == "-" else size == number

    return test


def test(shell: Shell, argv: list[str], io: StreamIO) -> int:
    """``test EXPR`` / ``[ EXPR ]``: file tests, string and integer comparisons,
    ``!``, ``-a`` and ``-o``. Status 0 true, 1 false, 2 error."""
    args = argv[1:]
    if argv[0] == "[":
        if not args or args[-1] != "]":
            io.error("sh: [: missing ]")
            return 2
        args = args[:-1]
    try:
        return 0 if _or(shell, args) else 1
    except (UsageError, ValueError) as exc:
        io.error(f"sh: {argv[0]}: {exc}")
        return 2


def _or(shell: Shell, args: list[str]) -> bool:
    groups: list[list[str]] = [[]]
    for arg in args:
        if arg == "-o" and groups[-1]:
            groups.append([])
        else:
            groups[-1].append(arg)
    return any(all(_primary(shell, part) for part in _split(group, "-a")) for group in groups)


def _split(args: list[str], separator: str) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for arg in args:
        if arg == separator and parts[-1]:
            parts.append([])
        else:
            parts[-1].append(arg)
    return parts


def _primary(shell: Shell, args: list[str]) -> bool:
    if args and args[0] == "!":
        return not _primary(shell, args[1:])
    if not args:
        return False
    if len(args) == 1:
        return args[0] != ""
    if len(args) == 2:
        op, operand = args
        if op == "-z":
            return operand == ""
        if op == "-n":
            return operand != ""
        path = shell.resolve(operand)
        if not shell.sandbox.exists(path):
            return False
        entry = shell.sandbox.stat(path)
        checks = {
            "-e": True, "-f": not entry.is_dir, "-d": entry.is_dir, "-s": entry.size > 0,
            "-r": bool(entry.mode & 0o400), "-w": bool(entry.mode & 0o200),
            "-x": bool(entry.mode & 0o100), "-L": False, "-h": False,
        }  # fmt: skip
        if op not in checks:
            raise UsageError(f"{op}: unary operator expected")
        return checks[op]
    if len(args) == 3:
        left, op, right = args
        if op in ("=", "=="):
            return left == right
        if op == "!=":
            return left != right
        numeric = {"-eq": "==", "-ne": "!=", "-lt": "<", "-le": "<=", "-gt": ">", "-ge": ">="}
        if op in numeric:
            a, b = int(left), int(right)
            return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b,
                    ">=": a >= b}[numeric[op]]  # fmt: skip
    raise UsageError("too many arguments")


COMMANDS: dict[str, CommandFn] = {"find": find, "test": test, "[": test}
