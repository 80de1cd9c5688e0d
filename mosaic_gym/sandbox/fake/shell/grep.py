"""``grep`` for the fake shell: BRE / ERE / fixed patterns over files, stdin or trees.

Patterns are translated to ``re`` syntax and run on the ``regex`` engine with a wall-clock
timeout (see :mod:`~mosaic_gym.sandbox.fake.shell.limits`): a pattern that is still slow
stops the command with a resource-limit error. Two older guards stay, since they keep
the common case cheap: a quantified group that itself contains a quantifier (``(a+)+``)
is refused, and very long lines are matched in overlapping windows of :data:`WINDOW`
characters.
"""

from __future__ import annotations

import errno
import fnmatch
import posixpath
import re
from typing import TYPE_CHECKING

from mosaic_gym.sandbox.fake.shell.limits import IGNORECASE, Matcher, RegexError, compile_regex
from mosaic_gym.sandbox.fake.shell.streams import (
    CommandFn,
    Options,
    StreamIO,
    UsageError,
    decode,
    describe,
    parse_options,
)

if TYPE_CHECKING:
    from mosaic_gym.sandbox.fake.shell.interpreter import Shell

WINDOW = 4096
OVERLAP = 256
_INCLUDE, _EXCLUDE, _EXCLUDE_DIR = "\ue001", "\ue002", "\ue003"
_LONG = {
    "--ignore-case": "i", "--recursive": "r", "--dereference-recursive": "R",
    "--line-number": "n", "--invert-match": "v", "--files-with-matches": "l",
    "--files-without-match": "L", "--count": "c", "--extended-regexp": "E",
    "--fixed-strings": "F", "--perl-regexp": "P", "--basic-regexp": "G",
    "--word-regexp": "w", "--line-regexp": "x", "--only-matching": "o", "--quiet": "q",
    "--silent": "q", "--no-filename": "h", "--with-filename": "H", "--regexp": "e",
    "--file": "f", "--max-count": "m", "--after-context": "A", "--before-context": "B",
    "--context": "C", "--no-messages": "s", "--text": "a", "--include": _INCLUDE,
    "--exclude": _EXCLUDE, "--exclude-dir": _EXCLUDE_DIR,
}  # fmt: skip
_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": r"\s", "blank": r" \t", "punct": r"!-/:-@\[-`{-~", "xdigit": "0-9A-Fa-f",
    "word": r"\w",
}  # fmt: skip
_BRE_SPECIAL = {"(": "(", ")": ")", "{": "{", "}": "}", "|": "|", "+": "+", "?": "?",
                "<": r"\b", ">": r"\b"}  # fmt: skip


def _bracket(pattern: str, start: int) -> tuple[str, int]:
    """Translate a bracket expression starting at ``[``; returns (``re`` text, next index).

    Raises re.error when it is not closed or names an unknown class.
    """
    index = start + 1
    if index < len(pattern) and pattern[index] in "^!":
        index += 1
    if index < len(pattern) and pattern[index] == "]":
        index += 1
    while index < len(pattern) and pattern[index] != "]":
        end = pattern.find(":]", index + 2) if pattern.startswith("[:", index) else -1
        index = end + 2 if end >= 0 else index + 1
    if index >= len(pattern):
        raise re.error("Unmatched [, [^, [:, [., or [=")
    body = pattern[start + 1 : index]
    negate = body[:1] in ("^", "!")
    body = body[1:] if negate else body

    def member(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            if match.group(1) not in _CLASSES:
                raise re.error(f"invalid character class '{match.group(1)}'")
            return _CLASSES[match.group(1)]
        char = match.group(2)
        return "\\" + char if char in "\\[]&~|" else char

    body = re.sub(r"\[:(\w*):\]|(.)", member, body, flags=re.DOTALL)
    return f"[{'^' if negate else ''}{body}]", index + 1


def translate(pattern: str, syntax: str) -> str:
    """A POSIX pattern (``syntax`` is ``"F"``, ``"G"`` basic or ``"E"`` extended) as ``re``."""
    if syntax == "F":
        return re.escape(pattern)
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "[":
            text, index = _bracket(pattern, index)
            out.append(text)
            continue
        if char == "\\" and index + 1 < len(pattern):
            nxt = pattern[index + 1]
            if syntax == "G" and nxt in _BRE_SPECIAL:
                out.append(_BRE_SPECIAL[nxt])
            elif nxt in "<>":
                out.append(r"\b")
            else:
                out.append("\\" + nxt)
            index += 2
            continue
        if syntax == "G" and char in "(){}|+?":
            out.append("\\" + char)
        elif char == "*" and (not out or out[-1] in ("(", "^", "|")):
            out.append(r"\*")
        else:
            out.append(char)
        index += 1
    return "".join(out)


def is_risky(pattern: str) -> bool:
    """True for a quantified group containing a quantifier (catastrophic backtracking)."""
    groups: list[bool] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
            continue
        if char == "[":
            end = pattern.find("]", index + 2)
            index = len(pattern) if end < 0 else end + 1
            continue
        index += 1
        if char == "(":
            groups.append(False)
        elif char == ")" and groups:
            inner = groups.pop()
            quantified = index < len(pattern) and pattern[index] in "*+{?"
            if inner and quantified:
                return True
            if groups and (inner or quantified):
                groups[-1] = True
        elif char in "*+{?" and groups:
            groups[-1] = True
    return False


def compile_pattern(options: Options, patterns: list[str]) -> Matcher:
    syntax = "F" if "F" in options else "E" if ("E" in options or "P" in options) else "G"
    try:
        parts = [translate(pattern, syntax) for pattern in patterns]
        if any(is_risky(part) for part in parts):
            raise UsageError("pattern too complex for the sandbox (nested quantifiers)", 2)
        joined = "|".join(f"(?:{part})" for part in parts)
        if "w" in options:
            joined = rf"(?<!\w)(?:{joined})(?!\w)"
        if "x" in options:
            joined = rf"^(?:{joined})$"
        # The regex engine with a timeout, not re: re cannot be interrupted.
        return compile_regex(joined, IGNORECASE if "i" in options else 0)
    except (re.error, RegexError, OverflowError, RecursionError) as exc:
        raise UsageError(f"invalid regular expression: {exc}", 2) from None


def _windows(line: str) -> list[str]:
    if len(line) <= WINDOW:
        return [line]
    step = WINDOW - OVERLAP
    return [line[start : start + WINDOW] for start in range(0, len(line), step)]


def grep(shell: Shell, argv: list[str], io: StreamIO) -> int:
    args = [a for a in argv[1:] if not a.startswith(("--color", "--colour"))]
    flags = "ivnlLcrREFPGwxoqsHhaIZ"
    options = parse_options(args, flags, "efmABC" + _INCLUDE + _EXCLUDE + _EXCLUDE_DIR, _LONG,
                            usage_status=2)  # fmt: skip
    if argv[0] in ("egrep", "fgrep"):
        options.flags.add("E" if argv[0] == "egrep" else "F")
    operands = list(options.operands)
    patterns = list(options.all("e"))
    for name in options.all("f"):
        patterns.extend(decode(shell.read_path(name, io.stdin)).splitlines())
    if not patterns and "e" not in options and "f" not in options:
        if not operands:
            raise UsageError("usage: grep [OPTION]... PATTERNS [FILE]...", 2)
        patterns = [operands.pop(0)]
    regex = compile_pattern(options, patterns or [""])
    recursive = "r" in options or "R" in options
    sources = _sources(shell, io, options, operands, recursive)
    show_names = "H" in options or (
        "h" not in options and (recursive or len(operands) > 1 or len(sources) > 1)
    )
    status, matched = 0, False
    for shown, data in sources:
        if data is None:
            status = 2
            continue
        hits = _search(regex, options, decode(data), shown if show_names else None, io, shell)
        matched = matched or hits > 0
        if matched and "q" in options:
            return 0
    return 0 if matched else (status or 1)


def _sources(
    shell: Shell, io: StreamIO, options: Options, operands: list[str], recursive: bool
) -> list[tuple[str, bytes | None]]:
    """(shown name, content or None on error) for every file to search."""
    if not operands:
        if not recursive:
            return [("(standard input)", io.stdin)]
        operands = ["."]
        strip_dot = True
    else:
        strip_dot = False
    found: list[tuple[str, bytes | None]] = []
    for operand in operands:
        pending = [operand]
        while pending:
            name = pending.pop()
            path = "-" if name == "-" else shell.resolve(name)
            try:
                entry = shell.sandbox.stat(path) if path != "-" else None
                if entry is not None and entry.is_dir:
                    if not recursive:
                        raise IsADirectoryError(errno.EISDIR, "Is a directory", name)
                    children = shell.sandbox.list_dir(path)
                    prefix = "" if strip_dot and name == "." else name.rstrip("/") + "/"
                    for child in reversed(children):
                        if _excluded(options, child.name, child.is_dir):
                            continue
                        pending.append(prefix + child.name)
                    continue
                found.append((name, shell.read_path(name, io.stdin)))
            except OSError as exc:
                if "s" not in options:
                    io.error(f"grep: {name}: {describe(exc)}")
                found.append((name, None))
    return found


def _excluded(options: Options, name: str, is_dir: bool) -> bool:
    if is_dir:
        return any(fnmatch.fnmatchcase(name, g) for g in options.all(_EXCLUDE_DIR))
    includes = options.all(_INCLUDE)
    if includes and not any(fnmatch.fnmatchcase(name, g) for g in includes):
        return True
    return any(fnmatch.fnmatchcase(posixpath.basename(name), g) for g in options.all(_EXCLUDE))


def _count(options: Options, letter: str) -> int:
    value = options.value(letter)
    if value is None:
        return 0
    if not (value.isascii() and value.isdigit()):
        raise UsageError(f"invalid context length or count argument: '{value}'", 2)
    return int(value)


def _search(
    regex: Matcher,
    options: Options,
    text: str,
    name: str | None,
    io: StreamIO,
    shell: Shell,
) -> int:
    """Print what grep prints for one input; returns the number of selected lines."""
    lines = text.splitlines()
    invert = "v" in options
    limit = _count(options, "m")
    after = _count(options, "A") or _count(options, "C")
    before = _count(options, "B") or _count(options, "C")
    selected: list[int] = []
    for number, line in enumerate(lines):
        windows = _windows(line)
        # Backtracking may cost up to quadratic time per window: charge for it.
        shell.budget.charge(sum(len(window) ** 2 for window in windows) * 1e-10 + 1e-6)
        if any(regex.search(window) for window in windows) != invert:
            selected.append(number)
            if "q" in options or (limit and len(selected) >= limit):
                break
    prefix = f"{name}:" if name is not None else ""
    if "q" in options:
        return len(selected)
    if "l" in options or "L" in options:
        if bool(selected) == ("l" in options):
            io.write(f"{name or '(standard input)'}\n")
        return len(selected)
    if "c" in options:
        io.write(f"{prefix}{len(selected)}\n")
        return len(selected)
    shown: set[int] = set()
    chosen = set(selected)
    last = -2
    for number in selected:
        window = range(max(0, number - before), min(len(lines), number + after + 1))
        if (before or after) and last >= 0 and window.start > last + 1:
            io.write("--\n")
        for index in window:
            if index in shown:
                continue
            shown.add(index)
            last = index
            is_match = index in chosen
            sep = ":" if is_match else "-"
            lead = (f"{name}{sep}" if name is not None else "") + (
                f"{index + 1}{sep}" if "n" in options else ""
            )
            if "o" in options and is_match and not invert:
                for window_text in _windows(lines[index]):
                    for match in regex.finditer(window_text):
                        if match.group():
                            io.write(f"{lead}{match.group()}\n")
            else:
                io.write(f"{lead}{lines[index]}\n")
    return len(selected)


COMMANDS: dict[str, CommandFn] = {"grep": grep, "egrep": grep, "fgrep": grep}
