"""Word expansion for the fake shell: ``~``, ``$VAR``/``${VAR:-x}``, field splitting of
unquoted expansions, and globbing (``* ? [...]``) against the fake tree.

Quoting decides what happens: the lexer tags each part of a word ``bare`` (expand,
split, glob), ``dq`` (expand only) or ``lit`` (as is).
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from mosaic_gym.sandbox.base import HOME
from mosaic_gym.sandbox.fake.shell.arith import evaluate
from mosaic_gym.sandbox.fake.shell.limits import (
    CHAR_COST_S,
    DOTALL,
    MAX_EXPANSION_CHARS,
    MAX_EXPANSION_DEPTH,
    RegexError,
    check_size,
    compile_regex,
    limit,
)
from mosaic_gym.sandbox.fake.shell.substitution import substitute
from mosaic_gym.sandbox.fake.shell.syntax import ShellSyntaxError, Word, closing_paren

if TYPE_CHECKING:
    from mosaic_gym.sandbox.fake.shell.interpreter import Shell

_VARIABLE = re.compile(r"\$(?:\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*)|([0-9?$#@*!-]))")
_BRACED = re.compile(
    r"(#?)([A-Za-z_][A-Za-z0-9_]*|[0-9?$#@*!-])(?:(:?[-=+?]|%%|%|##|#|//|/)(.*))?", re.DOTALL
)
_UNBRACED = re.compile(r"\$(?:(?!)(x)|([A-Za-z_][A-Za-z0-9_]*)|([0-9?$#@*!-]))")  # group 1: never
_MAGIC = re.compile(r"[*?\[]")
#: What ``$$``, ``$0`` and ``$-`` expand to.
_SPECIALS = {"$": "4242", "0": "sh", "-": ""}


def _references(text: str) -> Iterator[re.Match[str]]:
    """The ``$`` references in ``text``, in order, in linear time.

    ``\\{([^}]*)\\}`` alone is quadratic: every ``${`` after the last ``}`` scans to the
    end before failing (20,000 nested ``${A:-`` took seconds). Past the last ``}`` no
    braced reference can match, so that tail is scanned without the braced form.
    """
    last = text.rfind("}")
    yield from _VARIABLE.finditer(text, 0, last + 1)
    yield from _UNBRACED.finditer(text, last + 1)


def _variable_of(shell: Shell) -> Callable[[re.Match[str]], str]:
    return lambda match: variable(shell, match)


def expand_word(shell: Shell, word: Word) -> list[str]:
    """Tilde, variable expansion, field splitting and globbing of one word."""
    fields: list[list[tuple[str, bool]]] = [[]]
    quoted = [False]

    def new_field() -> None:
        if fields[-1] or quoted[-1]:
            fields.append([])
            quoted.append(False)

    produced = 0

    def add_split(value: str) -> None:
        """An unquoted expansion's value: split into fields on whitespace."""
        if value and value[0].isspace():
            new_field()
        for number, piece in enumerate(value.split()):
            if number:
                new_field()
            fields[-1].append((piece, True))
        if value and value[-1].isspace():
            new_field()

    for index, segment in enumerate(word.segments):
        if segment.kind == "arith":
            value = str(evaluate(shell, _arith_text(shell, segment.text)))
            fields[-1].append((value, False))
            continue
        if segment.kind in ("cmd", "dqcmd"):
            value = substitute(shell, segment.text)
            produced += len(value)
            check_size("expansion", produced, MAX_EXPANSION_CHARS)
            if segment.kind == "dqcmd":
                fields[-1].append((value, False))
                quoted[-1] = True
            else:
                add_split(value)
            continue
        if segment.kind == "dq" and segment.text == "$@":  # "$@": one field per parameter
            for number, value in enumerate(shell.args):
                if number:
                    new_field()
                fields[-1].append((value, False))
                quoted[-1] = True
            if not shell.args and fields[-1] == [] and len(word.segments) == 1:
                quoted[-1] = False  # "$@" with no parameters is no field at all
            continue
        if segment.kind != "bare":
            text = expand_text(shell, segment.text) if segment.kind == "dq" else segment.text
            produced += len(text)
            check_size("expansion", produced, MAX_EXPANSION_CHARS)
            fields[-1].append((text, False))
            quoted[-1] = True
            continue
        text = segment.text
        if index == 0 and (text == "~" or text.startswith("~/")):
            fields[-1].append((shell.env.get("HOME", HOME), False))
            text = text[1:]
        position = 0
        for match in _references(text):
            fields[-1].append((text[position : match.start()], True))
            position = match.end()
            value = _variable_of(shell)(match)
            produced += len(value)
            check_size("expansion", produced, MAX_EXPANSION_CHARS)
            add_split(value)
        fields[-1].append((text[position:], True))
    result: list[str] = []
    for pieces, was_quoted in zip(fields, quoted, strict=True):
        text = "".join(piece for piece, _ in pieces)
        if not text and not was_quoted:
            continue
        if any(globbable and _MAGIC.search(piece) for piece, globbable in pieces):
            pattern = "".join(p if g else _escape_glob(p) for p, g in pieces)
            matches = glob(shell, pattern)
            if matches:
                result.extend(matches)
                continue
        result.append(text)
    return result


def expand_plain(shell: Shell, word: Word) -> str:
    """Expansion without splitting or globbing (assignment values)."""
    return "".join(
        segment.text if segment.kind == "lit"
        else substitute(shell, segment.text) if segment.kind in ("cmd", "dqcmd")
        else str(evaluate(shell, _arith_text(shell, segment.text))) if segment.kind == "arith"
        else expand_text(shell, segment.text)
        for segment in word.segments
    )


def _arith_text(shell: Shell, text: str) -> str:
    """The body of ``$((...))`` with its ``$(...)`` substitutions run and its ``$``
    references expanded, ready for :func:`evaluate`."""
    if "$(" not in text and "`" not in text:
        return expand_text(shell, text)
    pieces: list[str] = []
    index = 0
    while index < len(text):
        start = text.find("$(", index)
        if start < 0:
            break
        end = closing_paren(text, start + 2)
        pieces.append(expand_text(shell, text[index:start]))
        pieces.append(substitute(shell, text[start + 2 : end]))
        index = end + 1
    pieces.append(expand_text(shell, text[index:]))
    return "".join(pieces)


def expand_text(shell: Shell, text: str) -> str:
    """Expand ``$`` references in ``text`` (double quotes, here-documents)."""
    if "$" not in text:
        return text
    produced = [len(text)]

    def bounded(match: re.Match[str]) -> str:
        # Counted as each reference expands, so "$A$A$A..." stops before it is built.
        value = variable(shell, match)
        produced[0] += len(value)
        check_size("expansion", produced[0], MAX_EXPANSION_CHARS)
        return value

    pieces: list[str] = []
    position = 0
    for match in _references(text):
        pieces.append(text[position : match.start()])
        pieces.append(bounded(match))
        position = match.end()
    pieces.append(text[position:])
    result = "".join(pieces)
    # Bounded before anyone keeps it, and paid for: doubling a variable is not free.
    check_size("expansion", len(result), MAX_EXPANSION_CHARS)
    shell.budget.charge(len(result) * CHAR_COST_S)
    return result


def variable(shell: Shell, match: re.Match[str]) -> str:
    """The text one ``$...`` reference expands to (nesting bounded, see limits)."""
    if shell.expanding >= MAX_EXPANSION_DEPTH:
        raise limit(f"${{...}} nested more than {MAX_EXPANSION_DEPTH} deep")
    shell.expanding += 1
    try:
        value = _variable(shell, match)
    finally:
        shell.expanding -= 1
    check_size("expansion", len(value), MAX_EXPANSION_CHARS)
    return value


def _variable(shell: Shell, match: re.Match[str]) -> str:
    braced, name, special = match.groups()
    if braced is None:
        return lookup(shell, name or special)
    parsed = _BRACED.fullmatch(braced)
    if parsed is None:
        raise ShellSyntaxError(f"${{{braced}}}: bad substitution")
    length, name, op, word = parsed.groups()
    value = lookup(shell, name)
    if length:
        return str(len(value)) if not op else ""
    if op in ("%", "%%", "#", "##"):
        return _remove(value, expand_text(shell, word), op)
    if op in ("/", "//"):
        pattern, _, replacement = _split_unescaped(word)
        return _replace(value, expand_text(shell, pattern), expand_text(shell, replacement),
                        op == "//")
    defined = _is_defined(shell, name)
    is_set = defined and (op is None or not op.startswith(":") or value != "")
    if op in ("-", ":-"):
        return value if is_set else expand_text(shell, word)
    if op in ("=", ":="):
        if not is_set:
            shell.env[name] = expand_text(shell, word)
        return shell.env.get(name, "")
    if op in ("+", ":+"):
        return expand_text(shell, word) if is_set else ""
    if op in ("?", ":?") and not is_set:
        raise ShellSyntaxError(f"{name}: {expand_text(shell, word) or 'parameter not set'}")
    return value


def _is_defined(shell: Shell, name: str) -> bool:
    if name.isdigit() and name != "0":
        return int(name) <= len(shell.args)
    return name in shell.env or name in _SPECIALS or name in "?#@*"


def _glob_regex(pattern: str, *, lazy: bool, reverse: bool = False) -> str:
    """A shell pattern as a regular expression (``*``, ``?``, ``[...]``, ``\\x``);
    ``reverse`` builds the pattern of the reversed text."""
    tokens: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            tokens.append(".*?" if lazy else ".*")
        elif char == "?":
            tokens.append(".")
        elif char == "[":
            end = pattern.find("]", index + 2)
            if end < 0:
                tokens.append(re.escape(char))
            else:
                body = pattern[index + 1 : end]
                negate = body[:1] in ("!", "^")
                body = body[1:] if negate else body
                tokens.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
                index = end
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            tokens.append(re.escape(pattern[index]))
        else:
            tokens.append(re.escape(char))
        index += 1
    return "".join(reversed(tokens) if reverse else tokens)


def _remove(value: str, pattern: str, op: str) -> str:
    """``${VAR%pat}`` ``%%`` ``#`` ``##``: remove the shortest/longest matching suffix or
    prefix. Runs on the regex engine with its wall-clock backstop."""
    suffix = op.startswith("%")
    longest = len(op) == 2
    text = value[::-1] if suffix else value
    try:
        matcher = compile_regex(
            r"\A(?:" + _glob_regex(pattern, lazy=not longest, reverse=suffix) + ")", DOTALL)
    except (RegexError, OverflowError, RecursionError):
        return value
    found = matcher.search(text)
    if found is None:
        return value
    rest = text[found.end() :]
    return rest[::-1] if suffix else rest


def _replace(value: str, pattern: str, replacement: str, every: bool) -> str:
    """``${VAR/pat/rep}`` (first match) and ``${VAR//pat/rep}`` (every match), longest.
    As in busybox ``sh``, ``#``/``%`` at the start of the pattern are not anchors."""
    if not pattern:
        return value
    regex = _glob_regex(pattern, lazy=False)
    try:
        matcher = compile_regex(regex, DOTALL)
    except (RegexError, OverflowError, RecursionError):
        return value
    pieces: list[str] = []
    position = 0
    for found in matcher.finditer(value):
        if found.start() == found.end():
            continue
        pieces.append(value[position : found.start()])
        pieces.append(replacement)
        position = found.end()
        check_size("expansion", sum(map(len, pieces)), MAX_EXPANSION_CHARS)
        if not every:
            break
    pieces.append(value[position:])
    return "".join(pieces)


def _split_unescaped(word: str) -> tuple[str, str, str]:
    """``pat/rep`` split at the first ``/`` not escaped by a backslash."""
    index = 0
    while index < len(word):
        if word[index] == "\\":
            index += 2
            continue
        if word[index] == "/":
            return word[:index], "/", word[index + 1 :]
        index += 1
    return word, "", ""


def lookup(shell: Shell, name: str) -> str:
    """The value of one parameter; unset ones are empty."""
    if name == "?":
        return str(shell.status)
    if name in _SPECIALS:
        return _SPECIALS[name]
    if name.isdigit():
        index = int(name)
        return shell.args[index - 1] if 0 < index <= len(shell.args) else ""
    if name == "#":
        return str(len(shell.args))
    if name in ("@", "*"):
        return " ".join(shell.args)
    return shell.env.get(name, "")


def glob(shell: Shell, pattern: str) -> list[str]:
    """Paths matching ``pattern`` in the fake tree, sorted; hidden names need a dot."""
    absolute = pattern.startswith("/")
    parts = [part for part in pattern.split("/") if part]
    found: list[tuple[str, str]] = [("/" if absolute else shell.cwd, "/" if absolute else "")]
    for number, part in enumerate(parts):
        last = number == len(parts) - 1
        matched: list[tuple[str, str]] = []
        for directory, shown in found:
            if not _MAGIC.search(part):
                path = posixpath.join(directory, part)
                if shell.sandbox.exists(path):
                    matched.append((path, shown + part if last else shown + part + "/"))
                continue
            try:
                entries = shell.sandbox.list_dir(directory)
            except OSError:
                continue
            shell.budget.charge(len(entries) * 1e-6)
            for entry in entries:
                if entry.name.startswith(".") and not part.startswith("."):
                    continue
                if (last or entry.is_dir) and fnmatch.fnmatchcase(entry.name, part):
                    suffix = "" if last else "/"
                    matched.append((entry.path, shown + entry.name + suffix))
        found = matched
    return sorted(shown for _, shown in found) if parts else []


def _escape_glob(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)
