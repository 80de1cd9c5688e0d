"""Lexer and parser of the fake shell's small POSIX ``sh`` subset.

Why not :func:`shlex.split`: it forgets which characters were quoted, and the
shell must know (``find . -name '*.txt'`` must not glob, ``'$HOME'`` must not
expand). So the lexer keeps every word as segments tagged bare / double-quoted /
literal, and expansion happens later in :mod:`mosaic_gym.sandbox.fake.shell`.

Grammar (a subset of POSIX sh)::

    script    := and_or ((';' | '&' | NEWLINE) and_or)*
    and_or    := pipeline (('&&' | '||') NEWLINE* pipeline)*
    pipeline  := ['!'] command ('|' NEWLINE* command)*
    command   := (NAME=value)* (word | redirect)+
    redirect  := [fd] ('<' | '>' | '>>' | '>|' | '<&' | '>&' | '&>' | '&>>' | '<<' | '<<-') word

Control flow (``if``, ``for``, ``while``, ``case``, functions), subshells and
command substitution raise :class:`ShellUnsupported` before anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

SegmentKind = Literal["bare", "dq", "lit", "cmd", "dqcmd"]
#: Command substitutions (``$(...)``, backticks): unquoted, or inside double quotes.
SUBSTITUTIONS = ("cmd", "dqcmd")

#: Operators, longest first so that ``>>`` wins over ``>``.
OPERATORS = (
    "<<-", "&>>", "&&", "||", ";;", ">>", "<<", ">&", "<&", ">|", "&>",
    "|", "&", ";", "<", ">", "(", ")",
)  # fmt: skip
REDIRECTS = frozenset({"<", ">", ">>", ">|", "<&", ">&", "&>", "&>>", "<<", "<<-"})
KEYWORDS = frozenset(
    {"if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
     "function", "select", "{", "}", "[[", "]]", "time", "coproc"}
)  # fmt: skip
_PLAIN = re.compile(r"[^ \t\r\n'\"\\$`|&;<>()]+")
_DQ_SPECIAL = re.compile(r'["\\`$]')
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


class ShellSyntaxError(Exception):
    """The command line cannot be parsed (exit status 2, like ``sh``)."""


class ShellUnsupported(Exception):
    """Valid shell syntax that this interpreter deliberately does not implement."""


@dataclass(frozen=True)
class Segment:
    """A run of a word's characters: ``bare`` (expand, split, glob), ``dq``
    (expand only, from double quotes) or ``lit`` (taken as is)."""

    text: str
    kind: SegmentKind


@dataclass(frozen=True)
class Word:
    segments: tuple[Segment, ...]

    @property
    def raw(self) -> str:
        """The characters of the word with quotes removed and nothing expanded."""
        return "".join(segment.text for segment in self.segments)

    @property
    def is_bare(self) -> bool:
        return all(segment.kind == "bare" for segment in self.segments)


@dataclass(frozen=True)
class HereDoc:
    body: str
    expand: bool


@dataclass(frozen=True)
class Operator:
    op: str
    fd: int | None = None


Token = Word | HereDoc | Operator


@dataclass(frozen=True)
class Redirect:
    op: str
    #: The redirected descriptor; ``None`` for ``&>`` (stdout and stderr).
    fd: int | None
    target: Word | HereDoc


@dataclass
class Command:
    assignments: list[tuple[str, Word]] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class Pipeline:
    commands: list[Command]
    negate: bool = False


@dataclass
class AndOr:
    first: Pipeline
    rest: list[tuple[str, Pipeline]] = field(default_factory=list)


Script = list[AndOr]


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into words, here-documents and operators (newline is ``\\n``)."""
    return _Lexer(source).run()


def parse(source: str) -> Script:
    """Parse a command line. Raises ShellSyntaxError or ShellUnsupported."""
    return _Parser(tokenize(source)).script()


class _Lexer:
    def __init__(self, source: str) -> None:
        self.s = source
        self.i = 0
        self.tokens: list[Token] = []
        self.segments: list[Segment] = []
        self.in_word = False
        self.heredoc_next = ""  # "<<" or "<<-" while waiting for the delimiter word
        self.pending: list[tuple[int, bool]] = []  # (token index, strip tabs)

    def add(self, text: str, kind: SegmentKind) -> None:
        self.in_word = True
        if self.segments and self.segments[-1].kind == kind and kind not in SUBSTITUTIONS:
            text = self.segments.pop().text + text
        self.segments.append(Segment(text, kind))

    def flush(self) -> None:
        if not self.in_word:
            return
        self.tokens.append(Word(tuple(self.segments)))
        self.segments, self.in_word = [], False
        if self.heredoc_next:
            self.pending.append((len(self.tokens) - 1, self.heredoc_next == "<<-"))
            self.heredoc_next = ""

    def run(self) -> list[Token]:
        s, n = self.s, len(self.s)
        while self.i < n:
            c = s[self.i]
            if c in " \t\r":
                self.flush()
                self.i += 1
            elif c == "\n":
                self.flush()
                self.tokens.append(Operator("\n"))
                self.i += 1
                self.read_heredocs()
            elif c == "#" and not self.in_word:
                end = s.find("\n", self.i)
                self.i = n if end < 0 else end
            elif c == "'":
                end = s.find("'", self.i + 1)
                if end < 0:
                    raise ShellSyntaxError("Unterminated quoted string")
                self.add(s[self.i + 1 : end], "lit")
                self.i = end + 1
            elif c == '"':
                self.double_quoted()
            elif c == "\\":
                if s.startswith("\\\n", self.i):
                    self.i += 2
                else:
                    self.add(s[self.i + 1 : self.i + 2] or "\\", "lit")
                    self.i += 2
            elif c == "`":
                self.backquoted("cmd")
            elif c == "$" and s.startswith("$(", self.i):
                self.substitution("cmd")
            elif c == "$":
                self.add(self.dollar(), "bare")
            elif c in "|&;<>()":
                self.operator()
            else:
                match = _PLAIN.match(s, self.i)
                assert match is not None
                self.add(match.group(), "bare")
                self.i = match.end()
        self.flush()
        self.read_heredocs()
        if self.heredoc_next:
            raise ShellSyntaxError("here-document delimiter missing")
        return self.tokens

    def dollar(self) -> str:
        """The text of a ``$`` expansion starting at ``self.i`` (kept for later)."""
        s = self.s
        if s.startswith("$(", self.i):
            raise ShellUnsupported("command substitution $(...) is not supported")
        if s.startswith("${", self.i):
            end = s.find("}", self.i)
            if end < 0:
                raise ShellSyntaxError("Missing '}'")
            text, self.i = s[self.i : end + 1], end + 1
            return text
        self.i += 1
        return "$"

    def substitution(self, kind: SegmentKind) -> None:
        """``$(...)`` at ``self.i``: its source becomes one segment, run at expansion."""
        if self.s.startswith("$((", self.i):
            raise ShellUnsupported("arithmetic expansion $((...)) is not supported")
        end = _closing_paren(self.s, self.i + 2)
        self.add(self.s[self.i + 2 : end], kind)
        self.i = end + 1

    def backquoted(self, kind: SegmentKind) -> None:
        """A backquoted substitution at ``self.i``; inside, a backslash quotes only a
        backquote, a backslash or ``$``."""
        s, index, inner = self.s, self.i + 1, []
        while index < len(s) and s[index] != "`":
            if s[index] == "\\" and index + 1 < len(s) and s[index + 1] in "`\\$":
                inner.append(s[index + 1])
                index += 2
                continue
            inner.append(s[index])
            index += 1
        if index >= len(s):
            raise ShellSyntaxError("Unterminated command substitution (`)")
        self.add("".join(inner), kind)
        self.i = index + 1

    def double_quoted(self) -> None:
        s, n = self.s, len(self.s)
        self.i += 1
        self.add("", "dq")
        while True:
            match = _DQ_SPECIAL.search(s, self.i)
            if match is None:
                raise ShellSyntaxError("Unterminated quoted string")
            self.add(s[self.i : match.start()], "dq")
            self.i = match.start()
            c = s[self.i]
            if c == '"':
                self.i += 1
                return
            if c == "`":
                self.backquoted("dqcmd")
            elif c == "$" and s.startswith("$(", self.i):
                self.substitution("dqcmd")
            elif c == "$":
                self.add(self.dollar(), "dq")
            elif self.i + 1 < n and s[self.i + 1] in '$`"\\\n':
                if s[self.i + 1] != "\n":
                    self.add(s[self.i + 1], "lit")
                self.i += 2
            else:
                self.add("\\", "dq")
                self.i += 1

    def operator(self) -> None:
        s = self.s
        op = next(o for o in OPERATORS if s.startswith(o, self.i))
        fd = None
        digits = self.segments[0].text if len(self.segments) == 1 else ""
        numeric = digits.isascii() and digits.isdigit()
        if op[0] in "<>" and self.segments and self.segments[0].kind == "bare" and numeric:
            fd = int(digits[:6])
            self.segments, self.in_word = [], False
        self.flush()
        self.i += len(op)
        if self.heredoc_next:
            raise ShellSyntaxError(f"syntax error near unexpected token `{op}'")
        self.tokens.append(Operator(op, fd))
        if op in ("<<", "<<-"):
            self.heredoc_next = op

    def read_heredocs(self) -> None:
        """Consume the bodies of here-documents announced on the line just ended."""
        s = self.s
        for index, strip_tabs in self.pending:
            word = self.tokens[index]
            assert isinstance(word, Word)
            delimiter, lines = word.raw, []
            while self.i < len(s):
                end = s.find("\n", self.i)
                end = len(s) if end < 0 else end
                line, self.i = s[self.i : end], end + 1
                if strip_tabs:
                    line = line.lstrip("\t")
                if line == delimiter:
                    break
                lines.append(line + "\n")
            self.tokens[index] = HereDoc("".join(lines), expand=word.is_bare)
        self.pending = []


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def peek_op(self) -> str | None:
        token = self.peek()
        return token.op if isinstance(token, Operator) else None

    def skip_newlines(self) -> None:
        while self.peek_op() == "\n":
            self.pos += 1

    def unexpected(self) -> ShellSyntaxError:
        token = self.peek()
        shown = "newline" if token is None or self.peek_op() == "\n" else token
        if isinstance(shown, Operator):
            shown = shown.op
        elif isinstance(shown, Word):
            shown = shown.raw
        return ShellSyntaxError(f"syntax error near unexpected token `{shown}'")

    def script(self) -> Script:
        items: Script = []
        self.skip_newlines()
        while self.peek() is not None:
            items.append(self.and_or())
            if self.peek_op() in (";", "&", "\n"):
                self.pos += 1
                self.skip_newlines()
            elif self.peek() is not None:
                raise self.unexpected()
        return items

    def and_or(self) -> AndOr:
        node = AndOr(self.pipeline())
        while self.peek_op() in ("&&", "||"):
            op = self.peek_op()
            self.pos += 1
            self.skip_newlines()
            node.rest.append((op or "", self.pipeline()))
        return node

    def pipeline(self) -> Pipeline:
        negate = False
        token = self.peek()
        if isinstance(token, Word) and token.is_bare and token.raw == "!":
            negate, self.pos = True, self.pos + 1
        commands = [self.command()]
        while self.peek_op() == "|":
            self.pos += 1
            self.skip_newlines()
            commands.append(self.command())
        return Pipeline(commands, negate)

    def command(self) -> Command:
        command = Command()
        while (token := self.peek()) is not None:
            if isinstance(token, Word):
                self.pos += 1
                first = token.segments[0]
                if not command.words and first.kind == "bare" and _ASSIGNMENT.match(first.text):
                    name = first.text.partition("=")[0]
                    command.assignments.append((name, _strip_prefix(token, len(name) + 1)))
                    continue
                if not command.words and token.is_bare and token.raw in KEYWORDS:
                    raise ShellUnsupported(
                        f"shell keyword '{token.raw}' is not supported (no control flow)"
                    )
                command.words.append(token)
            elif isinstance(token, Operator) and token.op in REDIRECTS:
                self.pos += 1
                target = self.peek()
                if not isinstance(target, Word | HereDoc):
                    raise self.unexpected()
                self.pos += 1
                command.redirects.append(Redirect(token.op, _default_fd(token), target))
            elif isinstance(token, Operator) and token.op in ("(", ")"):
                raise ShellUnsupported("subshells and grouping with ( ) are not supported")
            else:
                break
        if not (command.words or command.assignments or command.redirects):
            raise self.unexpected()
        return command


def _default_fd(token: Operator) -> int | None:
    if token.fd is not None:
        return token.fd
    if token.op in ("&>", "&>>"):
        return None
    return 0 if token.op.startswith("<") else 1


def _strip_prefix(word: Word, count: int) -> Word:
    """``word`` without its first ``count`` characters (the ``NAME=`` of an assignment)."""
    segments = list(word.segments)
    while segments and count >= len(segments[0].text) and count:
        count -= len(segments.pop(0).text)
    if segments and count:
        first = segments[0]
        segments[0] = Segment(first.text[count:], first.kind)
    return Word(tuple(segments))


def _closing_paren(s: str, start: int) -> int:
    """Index of the ``)`` closing a ``$(`` whose body starts at ``start``.

    Linear scan: quotes are skipped whole (so ``$(echo ")")`` works), backslashes
    escape one character, and nested parentheses count. Raises ShellSyntaxError when
    the substitution is never closed.
    """
    depth, index, n = 1, start, len(s)
    while index < n:
        c = s[index]
        if c == "\\":
            index += 2
            continue
        if c == "'":
            end = s.find("'", index + 1)
            if end < 0:
                break
            index = end + 1
            continue
        if c == '"':
            index += 1
            while index < n and s[index] != '"':
                index += 2 if s[index] == "\\" else 1
            index += 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ShellSyntaxError("Unterminated command substitution $(")
