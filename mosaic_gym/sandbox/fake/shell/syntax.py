"""Lexer and parser of the fake shell's small POSIX ``sh`` subset.

Why not :func:`shlex.split`: it forgets which characters were quoted, and the
shell must know (``find . -name '*.txt'`` must not glob, ``'$HOME'`` must not
expand). So the lexer keeps every word as segments tagged bare / double-quoted /
literal, and expansion happens later in :mod:`mosaic_gym.sandbox.fake.shell`.

Grammar (a subset of POSIX sh)::

    script    := and_or ((';' | '&' | NEWLINE) and_or)*
    and_or    := pipeline (('&&' | '||') NEWLINE* pipeline)*
    pipeline  := ['!'] command ('|' NEWLINE* command)*
    command   := simple | compound redirect*
    simple    := (NAME=value)* (word | redirect)+
    compound  := '(' list ')' | '{' list '}' | if | for | while | until | case
    if        := 'if' list 'then' list ('elif' list 'then' list)* ['else' list] 'fi'
    for       := 'for' NAME ['in' word*] (';' | NEWLINE) 'do' list 'done'
    while     := ('while' | 'until') list 'do' list 'done'
    case      := 'case' word 'in' (['('] word ('|' word)* ')' list ';;')* 'esac'
    redirect  := [fd] ('<' | '>' | '>>' | '>|' | '<&' | '>&' | '&>' | '&>>' | '<<' | '<<-') word

    function  := NAME '(' ')' NEWLINE* compound redirect*

Words carry ``$(...)``/backquote substitutions and ``$((...))`` arithmetic as their own
segments. The ``function`` keyword, ``select``, ``[[``, ``time`` and ``coproc`` raise
:class:`ShellUnsupported` before anything runs. Compound commands may nest at most
:data:`MAX_SYNTAX_DEPTH` deep (a resource limit, not a Python recursion error).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

SegmentKind = Literal["bare", "dq", "lit", "cmd", "dqcmd", "arith"]
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
_RESERVED = KEYWORDS | {"in"}
#: Keywords that start a compound command this parser implements.
COMPOUND_STARTS = frozenset({"if", "for", "while", "until", "case", "{"})
#: Keywords that may only follow the start of a compound command.
CLOSERS = frozenset({"then", "else", "elif", "fi", "do", "done", "esac", "}"})
#: How deeply compound commands (``( ( ... ) )``, loops in loops) may nest in one script.
MAX_SYNTAX_DEPTH = 48
_PLAIN = re.compile(r"[^ \t\r\n'\"\\$`|&;<>()]+")
_DQ_SPECIAL = re.compile(r'["\\`$]')
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: Segment kinds never merged with a neighbour of the same kind.
_SEPARATE = ("cmd", "dqcmd", "arith")


class ShellSyntaxError(Exception):
    """The command line cannot be parsed (exit status 2, like ``sh``)."""


class ShellUnsupported(Exception):
    """Valid shell syntax that this interpreter deliberately does not implement."""


class SyntaxTooDeep(Exception):
    """Compound commands nested past :data:`MAX_SYNTAX_DEPTH` (a resource limit)."""


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
class Subshell:
    """``( list )``: runs with copies of the variables, cwd and options."""

    body: list[AndOr]
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class Group:
    """``{ list; }``: runs in the current shell."""

    body: list[AndOr]
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class If:
    #: (condition, body) for ``if`` and each ``elif``.
    clauses: list[tuple[list[AndOr], list[AndOr]]]
    otherwise: list[AndOr] | None = None
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class Loop:
    """``while``/``until`` COND ``do`` BODY ``done``."""

    until: bool
    condition: list[AndOr]
    body: list[AndOr]
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class For:
    name: str
    #: The words after ``in``; ``None`` without ``in`` (the positional parameters: none).
    words: list[Word] | None
    body: list[AndOr]
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class Case:
    word: Word
    items: list[tuple[list[Word], list[AndOr]]]
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class FunctionDef:
    """``NAME() COMPOUND``: defines a shell function (its redirections apply per call)."""

    name: str
    body: Subshell | Group | If | Loop | For | Case
    redirects: list[Redirect] = field(default_factory=list)


Compound = Subshell | Group | If | Loop | For | Case
Node = Command | Compound | FunctionDef


@dataclass
class Pipeline:
    commands: list[Node]
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
        if self.segments and self.segments[-1].kind == kind and kind not in _SEPARATE:
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
        """``$(...)`` at ``self.i``: its source becomes one segment, run at expansion;
        ``$((...))`` becomes an ``arith`` segment (evaluated at expansion)."""
        end = closing_paren(self.s, self.i + 2)
        if self.s.startswith("$((", self.i) and self.s[end - 1] == ")":
            try:
                inner = closing_paren(self.s, self.i + 3)
            except ShellSyntaxError:
                inner = -1
            if inner == end - 1:
                self.add(self.s[self.i + 3 : end - 1], "arith")
                self.i = end + 1
                return
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
        self.depth = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def peek_op(self) -> str | None:
        token = self.peek()
        return token.op if isinstance(token, Operator) else None

    def peek_keyword(self) -> str | None:
        """The reserved word at the current position, if the next token is one."""
        token = self.tokens[self.pos] if self.pos < len(self.tokens) else None
        if type(token) is Word and len(token.segments) == 1:  # hot: once per command
            segment = token.segments[0]
            if segment.kind == "bare" and segment.text in _RESERVED:
                return segment.text
        return None

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
        if token is None:
            return ShellSyntaxError("syntax error: unexpected end of file")
        return ShellSyntaxError(f"syntax error near unexpected token `{shown}'")

    def script(self) -> Script:
        items = self.compound_list(frozenset())
        if self.peek() is not None:
            raise self.unexpected()
        return items

    def compound_list(self, terminators: frozenset[str], *, stop_at_case: bool = False) -> Script:
        """``and_or`` items separated by ``;``/``&``/newlines, up to a terminator word
        (or ``)``/``;;`` when ``stop_at_case``), which is left unconsumed."""
        items: Script = []
        self.skip_newlines()
        while self.pos < len(self.tokens):
            op = self.peek_op()
            if op == ")" or (stop_at_case and op == ";;"):
                break
            if terminators and self.peek_keyword() in terminators:
                break
            items.append(self.and_or())
            op = self.peek_op()
            if op in (";", "&", "\n"):
                self.pos += 1
                self.skip_newlines()
            elif self.pos < len(self.tokens) and op not in (")", ";;") and not (
                terminators and self.peek_keyword() in terminators
            ):
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

    def command(self) -> Node:
        keyword = self.peek_keyword()
        if self.peek_op() == "(" or keyword in COMPOUND_STARTS:
            self.depth += 1
            if self.depth > MAX_SYNTAX_DEPTH:
                raise SyntaxTooDeep(f"compound commands nested more than {MAX_SYNTAX_DEPTH} deep")
            try:
                node = self.compound(keyword)
            finally:
                self.depth -= 1
            self.redirects(node.redirects)
            return node
        if keyword is not None:
            if keyword in CLOSERS:
                raise self.unexpected()
            raise ShellUnsupported(f"shell keyword '{keyword}' is not supported")
        return self.simple()

    def expect(self, keyword: str) -> None:
        if self.peek_keyword() != keyword:
            raise self.unexpected()
        self.pos += 1

    def compound(self, keyword: str | None) -> Compound:
        if keyword is None:  # "("
            self.pos += 1
            body = self.compound_list(frozenset())
            if self.peek_op() != ")":
                raise self.unexpected()
            self.pos += 1
            return Subshell(self.nonempty(body))
        self.pos += 1
        if keyword == "{":
            body = self.compound_list(frozenset({"}"}))
            self.expect("}")
            return Group(self.nonempty(body))
        if keyword == "if":
            return self.if_clause()
        if keyword in ("while", "until"):
            condition = self.nonempty(self.compound_list(frozenset({"do"})))
            return Loop(keyword == "until", condition, self.do_group())
        if keyword == "for":
            return self.for_clause()
        return self.case_clause()

    def nonempty(self, body: Script) -> Script:
        if not body:
            raise self.unexpected()
        return body

    def do_group(self) -> Script:
        self.expect("do")
        body = self.nonempty(self.compound_list(frozenset({"done"})))
        self.expect("done")
        return body

    def if_clause(self) -> If:
        clauses = []
        otherwise = None
        while True:
            condition = self.nonempty(self.compound_list(frozenset({"then"})))
            self.expect("then")
            body = self.nonempty(self.compound_list(frozenset({"elif", "else", "fi"})))
            clauses.append((condition, body))
            word = self.peek_keyword()
            self.pos += 1
            if word == "elif":
                continue
            if word == "else":
                otherwise = self.nonempty(self.compound_list(frozenset({"fi"})))
                self.expect("fi")
            elif word != "fi":
                self.pos -= 1
                raise self.unexpected()
            return If(clauses, otherwise)

    def for_clause(self) -> For:
        token = self.peek()
        if not isinstance(token, Word) or not _NAME.match(token.raw) or not token.is_bare:
            raise ShellSyntaxError("Bad for loop variable")
        self.pos += 1
        words: list[Word] | None = None
        self.skip_newlines()
        if self.peek_keyword() == "in":
            self.pos += 1
            words = []
            while isinstance(word := self.peek(), Word):
                words.append(word)
                self.pos += 1
        if self.peek_op() == ";":
            self.pos += 1
        self.skip_newlines()
        return For(token.raw, words, self.do_group())

    def case_clause(self) -> Case:
        word = self.peek()
        if not isinstance(word, Word):
            raise self.unexpected()
        self.pos += 1
        self.skip_newlines()
        self.expect("in")
        items: list[tuple[list[Word], Script]] = []
        self.skip_newlines()
        while self.peek_keyword() != "esac":
            if self.peek() is None:
                raise self.unexpected()
            if self.peek_op() == "(":
                self.pos += 1
            patterns: list[Word] = []
            while True:
                pattern = self.peek()
                if not isinstance(pattern, Word):
                    raise self.unexpected()
                patterns.append(pattern)
                self.pos += 1
                if self.peek_op() != "|":
                    break
                self.pos += 1
            if self.peek_op() != ")":
                raise self.unexpected()
            self.pos += 1
            body = self.compound_list(frozenset({"esac"}), stop_at_case=True)
            items.append((patterns, body))
            if self.peek_op() == ";;":
                self.pos += 1
                self.skip_newlines()
            elif self.peek_keyword() != "esac":
                raise self.unexpected()
        self.pos += 1
        return Case(word, items)

    def function(self, name: Word) -> FunctionDef:
        """``NAME ( ) body``: the name is read, ``(`` is next."""
        self.pos += 1
        if self.peek_op() != ")" or not name.is_bare or not _NAME.match(name.raw):
            raise self.unexpected()
        self.pos += 1
        self.skip_newlines()
        keyword = self.peek_keyword()
        if not (self.peek_op() == "(" or keyword in COMPOUND_STARTS):
            raise self.unexpected()
        body = self.command()
        assert not isinstance(body, Command | FunctionDef)
        return FunctionDef(name.raw, body)

    def redirects(self, into: list[Redirect]) -> None:
        while isinstance(token := self.peek(), Operator) and token.op in REDIRECTS:
            self.pos += 1
            target = self.peek()
            if not isinstance(target, Word | HereDoc):
                raise self.unexpected()
            self.pos += 1
            into.append(Redirect(token.op, _default_fd(token), target))

    def simple(self) -> Command | FunctionDef:
        command = Command()
        while (token := self.peek()) is not None:
            if isinstance(token, Word):
                self.pos += 1
                first = token.segments[0]
                if not command.words and first.kind == "bare" and _ASSIGNMENT.match(first.text):
                    name = first.text.partition("=")[0]
                    command.assignments.append((name, _strip_prefix(token, len(name) + 1)))
                    continue
                command.words.append(token)
            elif isinstance(token, Operator) and token.op in REDIRECTS:
                self.pos += 1
                target = self.peek()
                if not isinstance(target, Word | HereDoc):
                    raise self.unexpected()
                self.pos += 1
                command.redirects.append(Redirect(token.op, _default_fd(token), target))
            elif isinstance(token, Operator) and token.op == "(":
                if len(command.words) == 1 and not (command.assignments or command.redirects):
                    return self.function(command.words[0])
                raise self.unexpected()
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


def closing_paren(s: str, start: int) -> int:
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
