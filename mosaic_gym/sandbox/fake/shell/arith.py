"""Arithmetic expansion ``$((...))`` for the fake shell: signed 64-bit integers, as ``sh``.

Operators, loosest first: assignment ``= += -= *= /= %= <<= >>= &= ^= |=``,
``?:``, ``||``, ``&&``, ``|``, ``^``, ``&``, ``== !=``, ``< <= > >=``, ``<< >>``,
``+ -``, ``* / %``, ``**``, unary ``+ - ! ~``, parentheses, decimal / ``0x`` hex / ``0``
octal numbers, and variable names (an unset or empty one is 0). ``$VAR`` and ``$(...)``
inside are expanded first, as the shell does (backquotes inside are not).

Bounded: the expression is at most :data:`MAX_ARITH_CHARS` long and its parentheses
nest at most :data:`MAX_ARITH_DEPTH` deep (a resource limit, never a Python recursion
error); every result wraps to 64 bits, so no operation builds a huge integer (``**``
works modulo 2**64). Division by zero is the shell's error, not an exception.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mosaic_gym.sandbox.fake.shell.limits import check_size, limit
from mosaic_gym.sandbox.fake.shell.syntax import ShellSyntaxError

if TYPE_CHECKING:
    from mosaic_gym.sandbox.fake.shell.interpreter import Shell

MAX_ARITH_CHARS = 4096
MAX_ARITH_DEPTH = 32
_TOKEN = re.compile(
    r"\s*(?:(0[xX][0-9a-fA-F]+|\d+)|([A-Za-z_][A-Za-z0-9_]*)"
    r"|(\*\*=?|<<=|>>=|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&^|]=|[-+*/%&^|!~<>=?:()]))"
)
_BINARY = [
    ("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", "<=", ">", ">="),
    ("<<", ">>"), ("+", "-"), ("*", "/", "%"),
]  # fmt: skip
_ASSIGN = {"=", "+=", "-=", "*=", "/=", "%=", "<<=", ">>=", "&=", "^=", "|="}


def wrap(value: int) -> int:
    """``value`` as a signed 64-bit integer (what sh's intmax_t holds)."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def evaluate(shell: Shell, text: str) -> int:
    """The value of the arithmetic expression ``text`` (already expanded)."""
    check_size("arithmetic expression", len(text), MAX_ARITH_CHARS)
    tokens: list[str] = []
    position = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None or match.end() == position:
            raise ShellSyntaxError(f"arithmetic syntax error: {text.strip()}")
        tokens.append(match.group(match.lastindex or 0))
        position = match.end()
    parser = _Arith(shell, tokens, text)
    if not tokens:
        return 0
    value = parser.assignment()
    if parser.pos != len(tokens):
        raise parser.error()
    return value


class _Arith:
    def __init__(self, shell: Shell, tokens: list[str], text: str) -> None:
        self.shell = shell
        self.tokens = tokens
        self.pos = 0
        self.text = text.strip()
        self.depth = 0

    def error(self) -> ShellSyntaxError:
        return ShellSyntaxError(f"arithmetic syntax error: {self.text}")

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise self.error()
        self.pos += 1
        return token

    def value_of(self, name: str) -> int:
        raw = self.shell.env.get(name, "").strip()
        if not raw:
            return 0
        try:
            return wrap(int(raw, 0) if not raw.isdigit() else int(raw))
        except ValueError:
            raise ShellSyntaxError(f"arithmetic syntax error: {raw}") from None

    def assignment(self) -> int:
        token = self.peek()
        following = self.tokens[self.pos + 1] if self.pos + 1 < len(self.tokens) else None
        if token is not None and re.match(r"[A-Za-z_]", token) and following in _ASSIGN:
            self.pos += 2
            value = self.assignment()
            if following != "=":
                value = self.apply(following[:-1], self.value_of(token), value)
            self.shell.env[token] = str(value)
            return value
        return self.conditional()

    def conditional(self) -> int:
        condition = self.binary(0)
        if self.peek() != "?":
            return condition
        self.pos += 1
        yes = self.assignment()
        if self.take() != ":":
            raise self.error()
        no = self.conditional()
        return yes if condition else no

    def binary(self, level: int) -> int:
        if level == len(_BINARY):
            return self.power()
        left = self.binary(level + 1)
        while self.peek() in _BINARY[level]:
            op = self.take()
            right = self.binary(level + 1)
            left = self.apply(op, left, right)
        return left

    def power(self) -> int:
        base = self.unary()
        if self.peek() == "**":
            self.pos += 1
            exponent = self.power()
            if exponent < 0:
                raise ShellSyntaxError("exponent less than 0")
            return wrap(pow(base, exponent, 1 << 64))
        return base

    def unary(self) -> int:
        token = self.take()
        if token in ("+", "-", "!", "~"):
            self.depth += 1
            if self.depth > MAX_ARITH_DEPTH:
                raise limit(f"arithmetic nested more than {MAX_ARITH_DEPTH} deep")
            value = self.unary()
            self.depth -= 1
            return {"+": value, "-": wrap(-value), "!": int(not value), "~": wrap(~value)}[token]
        if token == "(":
            self.depth += 1
            if self.depth > MAX_ARITH_DEPTH:
                raise limit(f"arithmetic nested more than {MAX_ARITH_DEPTH} deep")
            value = self.assignment()
            self.depth -= 1
            if self.take() != ")":
                raise self.error()
            return value
        if token[0].isdigit():
            try:
                if token[:2].lower() == "0x":
                    return wrap(int(token, 16))
                return wrap(int(token, 8) if len(token) > 1 and token[0] == "0" else int(token))
            except ValueError:
                raise self.error() from None
        if re.match(r"[A-Za-z_]", token):
            return self.value_of(token)
        raise self.error()

    def apply(self, op: str, left: int, right: int) -> int:
        if op in ("/", "%"):
            if right == 0:
                raise ShellSyntaxError("divide by zero")
            quotient = abs(left) // abs(right) * (1 if (left < 0) == (right < 0) else -1)
            return wrap(quotient if op == "/" else left - right * quotient)
        if op in ("<<", ">>"):
            right &= 63
            return wrap(left << right if op == "<<" else left >> right)
        results = {
            "+": lambda: left + right, "-": lambda: left - right, "*": lambda: left * right,
            "&": lambda: left & right, "|": lambda: left | right, "^": lambda: left ^ right,
            "==": lambda: int(left == right), "!=": lambda: int(left != right),
            "<": lambda: int(left < right), "<=": lambda: int(left <= right),
            ">": lambda: int(left > right), ">=": lambda: int(left >= right),
            "&&": lambda: int(bool(left) and bool(right)),
            "||": lambda: int(bool(left) or bool(right)),
        }  # fmt: skip
        return wrap(results[op]())
