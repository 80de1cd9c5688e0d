"""``sed``: the stream editor, the subset scripts use, over the fake tree.

Options: ``-n``, ``-e SCRIPT`` (repeatable), ``-f FILE``, ``-i[SUFFIX]`` (in place, each
file on its own), ``-E``/``-r`` (extended regular expressions), ``-s``, and the long
forms ``--quiet``, ``--expression=``, ``--in-place[=SUFFIX]``, ``--regexp-extended``.

Addresses: ``N``, ``$``, ``/RE/`` and ``\\cREc`` (``I`` for case-insensitive),
``FIRST~STEP``, ranges ``A,B`` and ``A,+N``, negation ``!``. Commands: ``s`` (flags
``g``, ``i``/``I``, ``p``, a number), ``y``, ``d``, ``D``, ``p``, ``P``, ``n``, ``N``,
``q``/``Q`` with an exit code, ``=``, ``a``/``i``/``c`` (one-line GNU forms too),
``h``/``H``/``g``/``G``/``x``, ``{...}``, labels ``:L`` with ``b``/``t``/``T``.
Regular expressions are POSIX (translated as grep translates them) on the ``regex``
engine with its wall-clock backstop.

Bounded: pattern and hold spaces hold at most
:data:`~mosaic_gym.sandbox.fake.shell.limits.MAX_SED_SPACE` characters, one run executes
at most :data:`~mosaic_gym.sandbox.fake.shell.limits.MAX_SED_STEPS` commands (a
``:a;ba`` loop ends with a resource limit) and its output is bounded like any stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mosaic_gym.sandbox.fake.shell.grep import is_risky, translate
from mosaic_gym.sandbox.fake.shell.limits import (
    IGNORECASE,
    MAX_SED_SPACE,
    MAX_SED_STEPS,
    Matcher,
    RegexError,
    check_size,
    compile_regex,
    limit,
)
from mosaic_gym.sandbox.fake.shell.streams import (
    COMMAND_COST_S,
    MAX_STREAM_BYTES,
    CommandFn,
    StreamIO,
    UsageError,
    decode,
    describe,
    encode,
)

if TYPE_CHECKING:
    from mosaic_gym.sandbox.fake.shell.interpreter import Shell


@dataclass
class Address:
    kind: str  # "line", "last", "regex", "step", "relative" (the +N of A,+N)
    number: int = 0
    step: int = 0
    regex: Matcher | None = None


@dataclass
class SedCommand:
    name: str
    first: Address | None = None
    second: Address | None = None
    negate: bool = False
    #: Text of a/i/c, label of b/t/T/:, the exit code of q/Q.
    text: str = ""
    regex: Matcher | None = None
    replacement: list[tuple[str, str | int]] = field(default_factory=list)
    count: int = 1
    global_: bool = False
    print_: bool = False
    #: Index to jump to: past the matching ``}`` for ``{``, the label for b/t/T.
    target: int = -1
    table: dict[int, int] = field(default_factory=dict)
    active: bool = False  # inside a range
    end_line: int = 0


class SedError(Exception):
    """A bad script (printed as ``sed: -e expression #1: ...``, exit 1)."""


class _ScriptParser:
    def __init__(self, script: str, extended: bool) -> None:
        self.s = script
        self.i = 0
        self.extended = extended
        self.last_regex: Matcher | None = None

    def error(self, message: str) -> SedError:
        return SedError(f"-e expression #1, char {self.i}: {message}")

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def skip_space(self) -> None:
        while self.peek() in (" ", "\t"):
            self.i += 1

    def parse(self) -> list[SedCommand]:
        commands: list[SedCommand] = []
        blocks: list[int] = []
        while True:
            while self.peek() in (" ", "\t", "\n", ";"):
                self.i += 1
            if not self.peek():
                break
            if self.peek() == "#":
                end = self.s.find("\n", self.i)
                self.i = len(self.s) if end < 0 else end
                continue
            command = SedCommand("")
            command.first = self.address()
            if command.first is not None and self.peek() == ",":
                self.i += 1
                self.skip_space()
                if self.peek() == "+":
                    self.i += 1
                    command.second = Address("relative", self.number())
                else:
                    command.second = self.address()
                    if command.second is None:
                        raise self.error("unexpected `,'")
            self.skip_space()
            while self.peek() == "!":
                command.negate = True
                self.i += 1
                self.skip_space()
            name = self.peek()
            if not name:
                raise self.error("missing command")
            self.i += 1
            command.name = name
            if name == "{":
                blocks.append(len(commands))
            elif name == "}":
                if not blocks or command.first is not None:
                    raise self.error("unexpected `}'")
                commands[blocks.pop()].target = len(commands) + 1
            else:
                self.arguments(command)
            commands.append(command)
        if blocks:
            raise self.error("unmatched `{'")
        labels = {c.text: index for index, c in enumerate(commands) if c.name == ":"}
        for command in commands:
            if command.name in "btT":
                if command.text and command.text not in labels:
                    raise SedError(f"can't find label for jump to `{command.text}'")
                command.target = labels.get(command.text, len(commands))
        return commands

    def number(self) -> int:
        start = self.i
        while self.peek().isdigit():
            self.i += 1
        if start == self.i:
            raise self.error("expected a number")
        return int(self.s[start : self.i][:12])

    def address(self) -> Address | None:
        char = self.peek()
        if char.isdigit():
            first = self.number()
            if self.peek() == "~":
                self.i += 1
                return Address("step", first, self.number())
            return Address("line", first)
        if char == "$":
            self.i += 1
            return Address("last")
        if char in ("/", "\\"):
            if char == "\\":
                self.i += 1
            delimiter = self.peek()
            if not delimiter or delimiter == "\n":
                raise self.error("unexpected end of address")
            self.i += 1
            pattern = self.delimited(delimiter, "address regex")
            flags = 0
            while self.peek() in ("I", "M"):
                flags |= IGNORECASE if self.peek() == "I" else 0
                self.i += 1
            return Address("regex", regex=self.compile(pattern, flags))
        return None

    def delimited(self, delimiter: str, what: str) -> str:
        """Text up to an unescaped ``delimiter`` (consumed); ``\\delim`` is the delimiter."""
        out: list[str] = []
        while True:
            char = self.peek()
            if not char:
                raise self.error(f"unterminated {what}")
            self.i += 1
            if char == "\\":
                nxt = self.peek()
                self.i += 1
                if nxt == delimiter:
                    out.append(delimiter)
                elif nxt == "n":
                    out.append("\n")
                elif not nxt:
                    raise self.error(f"unterminated {what}")
                else:
                    out.append("\\" + nxt)
                continue
            if char == delimiter:
                return "".join(out)
            out.append(char)

    def compile(self, pattern: str, flags: int) -> Matcher:
        if not pattern:
            if self.last_regex is None:
                raise self.error("no previous regular expression")
            return self.last_regex
        try:
            translated = translate(pattern, "E" if self.extended else "G")
            if is_risky(translated):
                raise self.error("pattern too complex for the sandbox (nested quantifiers)")
            self.last_regex = compile_regex(translated, flags)
        except (RegexError, OverflowError, RecursionError) as exc:
            raise self.error(f"invalid regular expression: {exc}") from None
        return self.last_regex

    def end_of_command(self) -> None:
        self.skip_space()
        if self.peek() not in ("", "\n", ";", "}", "#"):
            raise self.error("extra characters after command")

    def arguments(self, command: SedCommand) -> None:
        name = command.name
        if name == "s":
            self.substitute(command)
        elif name == "y":
            delimiter = self.peek()
            self.i += 1
            source = self.delimited(delimiter, "`y' command").replace("\\\\", "\\")
            target = self.delimited(delimiter, "`y' command").replace("\\\\", "\\")
            if len(source) != len(target):
                raise self.error("strings for `y' command are different lengths")
            command.table = {ord(a): ord(b) for a, b in zip(source, target, strict=True)}
            self.end_of_command()
        elif name in "aic":
            command.text = self.text_argument()
        elif name in ":btT":
            self.skip_space()
            start = self.i
            while self.peek() not in ("", "\n", ";"):
                self.i += 1
            command.text = self.s[start : self.i].strip()
            if name == ":" and not command.text:
                raise self.error('":" lacks a label')
        elif name in "qQ":
            self.skip_space()
            command.count = self.number() if self.peek().isdigit() else 0
            self.end_of_command()
        elif name in "dDpPnNhHgGx=l":
            self.end_of_command()
        elif name in "rRwW":
            raise self.error(f"`{name}' (file reading or writing) is not supported")
        else:
            raise self.error(f"unknown command: `{name}'")

    def text_argument(self) -> str:
        self.skip_space()
        if self.peek() == "\\":
            self.i += 1
            if self.peek() == "\n":
                self.i += 1
        out: list[str] = []
        while self.peek() and self.peek() != "\n":
            char = self.peek()
            self.i += 1
            if char == "\\" and self.peek():
                out.append(self.peek())
                self.i += 1
                continue
            out.append(char)
        return "".join(out)

    def substitute(self, command: SedCommand) -> None:
        delimiter = self.peek()
        if not delimiter or delimiter in "\n\\":
            raise self.error("unterminated `s' command")
        self.i += 1
        pattern = self.delimited(delimiter, "`s' command")
        replacement = self.replacement(delimiter)
        flags = 0
        while True:
            char = self.peek()
            if char == "g":
                command.global_ = True
            elif char in ("i", "I"):
                flags |= IGNORECASE
            elif char == "p":
                command.print_ = True
            elif char.isdigit():
                command.count = self.number()
                if command.count == 0:
                    raise self.error("number option to `s' command may not be zero")
                continue
            elif char in ("w", "e", "m", "M"):
                raise self.error(f"`s' flag `{char}' is not supported")
            else:
                break
            self.i += 1
        self.end_of_command()
        command.regex = self.compile(pattern, flags)
        command.replacement = replacement

    def replacement(self, delimiter: str) -> list[tuple[str, str | int]]:
        """The replacement as ("text", s) and ("group", n) pieces (n = 0 for ``&``)."""
        parts: list[tuple[str, str | int]] = []
        while True:
            char = self.peek()
            if not char:
                raise self.error("unterminated `s' command")
            self.i += 1
            if char == delimiter:
                return parts
            if char == "&":
                parts.append(("group", 0))
            elif char == "\\":
                nxt = self.peek()
                self.i += 1
                if nxt.isdigit():
                    parts.append(("group", int(nxt)))
                elif nxt == "n":
                    parts.append(("text", "\n"))
                elif nxt == "t":
                    parts.append(("text", "\t"))
                elif nxt == "\n":
                    parts.append(("text", "\n"))
                elif not nxt:
                    raise self.error("unterminated `s' command")
                else:
                    parts.append(("text", nxt))
            else:
                parts.append(("text", char))


@dataclass
class _Run:
    """The state of one sed run over its input lines."""

    shell: Shell
    commands: list[SedCommand]
    quiet: bool
    lines: list[tuple[str, bool]]  # (text, had a newline)
    out: list[str] = field(default_factory=list)
    size: int = 0
    index: int = 0  # lines consumed so far
    steps: int = 0
    hold: str = ""
    exit_code: int = 0
    line_number: int = 0

    def emit(self, text: str) -> None:
        self.size += len(text)
        if self.size > MAX_STREAM_BYTES:
            raise limit(f"sed output exceeds {MAX_STREAM_BYTES} bytes")
        self.out.append(text)

    def next_line(self) -> tuple[str, bool] | None:
        if self.index >= len(self.lines):
            return None
        line = self.lines[self.index]
        self.index += 1
        self.line_number += 1
        return line

    def is_last(self) -> bool:
        return self.index >= len(self.lines)

    def matches(self, address: Address, space: str) -> bool:
        if address.kind == "line":
            return self.line_number == address.number
        if address.kind == "last":
            return self.is_last()
        if address.kind == "step":
            if address.step <= 0:
                return self.line_number == address.number
            return self.line_number >= address.number and (
                (self.line_number - address.number) % address.step == 0)
        assert address.regex is not None
        return address.regex.search(space) is not None

    def selected(self, command: SedCommand, space: str) -> bool:
        first, second = command.first, command.second
        if first is None:
            hit = True
        elif second is None:
            hit = self.matches(first, space)
        elif command.active:
            if second.kind == "relative" or second.kind == "line":
                end = command.end_line if second.kind == "relative" else second.number
                hit = True
                if self.line_number >= end:
                    command.active = False
            elif self.matches(second, space):
                command.active, hit = False, True
            else:
                hit = True
        elif self.matches(first, space):
            hit, command.active = True, True
            if second.kind == "relative":
                command.end_line = self.line_number + second.number
                command.active = second.number > 0
            elif second.kind == "line":
                command.active = second.number > self.line_number
            elif second.kind == "last":
                command.active = not self.is_last()
        else:
            hit = False
        return hit != command.negate

    def run(self) -> None:
        carried: tuple[str, bool] | None = None
        while True:
            if carried is None:
                line = self.next_line()
                if line is None:
                    return
                space, newline = line
            else:
                space, newline = carried
                carried = None
            appended: list[str] = []
            stop = self.cycle(space, newline, appended)
            if stop is None:
                return
            autoprint, space, newline, restart, quit_ = stop
            if autoprint and not self.quiet:
                self.emit(space + ("\n" if newline else ""))
            for text in appended:
                self.emit(text + "\n")
            if quit_:
                return
            if restart:
                carried = (space, newline)

    def cycle(
        self, space: str, newline: bool, appended: list[str]
    ) -> tuple[bool, str, bool, bool, bool] | None:
        """Run the script once: (autoprint, space, newline, restart with space, quit)."""
        commands = self.commands
        substituted = False
        pc = 0
        while pc < len(commands):
            self.steps += 1
            if self.steps > MAX_SED_STEPS:
                raise limit(f"sed executed more than {MAX_SED_STEPS} commands")
            if self.steps % 1024 == 0:
                self.shell.budget.charge(COMMAND_COST_S)
            command = commands[pc]
            name = command.name
            if name in (":", "}"):
                pc += 1
                continue
            if not self.selected(command, space):
                pc = command.target if name == "{" else pc + 1
                continue
            pc += 1
            if name == "{":
                continue
            if name == "s":
                replaced = self.substitute(command, space)
                if replaced is not None:
                    space, substituted = replaced, True
                    if command.print_:
                        self.emit(space + "\n")
            elif name == "p":
                self.emit(space + "\n")
            elif name == "P":
                self.emit(space.split("\n", 1)[0] + "\n")
            elif name == "d":
                return False, space, newline, False, False
            elif name == "D":
                if "\n" not in space:
                    return False, space, newline, False, False
                return False, space.split("\n", 1)[1], newline, True, False
            elif name == "=":
                self.emit(f"{self.line_number}\n")
            elif name == "a":
                appended.append(command.text)
            elif name == "i":
                self.emit(command.text + "\n")
            elif name == "c":
                if command.second is None or not command.active:
                    self.emit(command.text + "\n")
                return False, space, newline, False, False
            elif name == "y":
                space = space.translate(command.table)
            elif name in "nN":
                if self.is_last():  # GNU and busybox: print the pattern space, stop
                    return True, space, newline, False, True
                if name == "n" and not self.quiet:
                    self.emit(space + ("\n" if newline else ""))
                line = self.next_line()
                assert line is not None
                space = line[0] if name == "n" else space + "\n" + line[0]
                newline = line[1]
            elif name == "h":
                self.hold = space
            elif name == "H":
                self.hold = self.hold + "\n" + space
            elif name == "g":
                space = self.hold
            elif name == "G":
                space = space + "\n" + self.hold
            elif name == "x":
                space, self.hold = self.hold, space
            elif name == "l":
                self.emit(repr(space)[1:-1] + "$\n")
            elif name in "qQ":
                self.exit_code = command.count
                return name == "q", space, newline, False, True
            elif name == "b":
                pc = command.target
            elif name in "tT":
                if substituted == (name == "t"):
                    pc = command.target
                substituted = False if name == "t" else substituted
            check_size("sed pattern space", len(space), MAX_SED_SPACE)
            check_size("sed hold space", len(self.hold), MAX_SED_SPACE)
        return True, space, newline, False, False

    def substitute(self, command: SedCommand, space: str) -> str | None:
        assert command.regex is not None
        pieces: list[str] = []
        position = 0
        number = 0
        done = False
        previous = -1
        for match in command.regex.finditer(space):
            if match.start() == match.end() == previous:
                continue  # sed: no empty match right where the last one ended
            previous = match.end()
            number += 1
            if number < command.count:
                continue
            pieces.append(space[position : match.start()])
            for kind, value in command.replacement:
                if kind == "text":
                    pieces.append(str(value))
                else:
                    assert isinstance(value, int)
                    try:
                        pieces.append(match.group(value) or "")
                    except IndexError:
                        raise limit("sed: invalid reference in `s' command") from None
            position = match.end()
            done = True
            check_size("sed pattern space", sum(map(len, pieces)), MAX_SED_SPACE)
            if not command.global_:
                break
        if not done:
            return None
        pieces.append(space[position:])
        return "".join(pieces)


def _lines(data: bytes) -> list[tuple[str, bool]]:
    text = decode(data)
    if not text:
        return []
    parts = text.split("\n")
    lines = [(part, True) for part in parts[:-1]]
    if parts[-1]:
        lines.append((parts[-1], False))
    return lines


def sed(shell: Shell, argv: list[str], io: StreamIO) -> int:
    scripts: list[str] = []
    quiet = extended = separate = False
    in_place: str | None = None
    operands: list[str] = []
    args = argv[1:]
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            operands.extend(args[index:])
            break
        if arg in ("--quiet", "--silent"):
            quiet = True
        elif arg in ("--regexp-extended",):
            extended = True
        elif arg.startswith("--expression="):
            scripts.append(arg.partition("=")[2])
        elif arg == "--in-place" or arg.startswith("--in-place="):
            in_place = arg.partition("=")[2]
        elif arg in ("--posix", "--separate", "--unbuffered", "--debug"):
            separate = separate or arg == "--separate"
        elif arg.startswith("--"):
            raise UsageError(f"unknown option -- '{arg[2:]}'")
        elif arg.startswith("-") and len(arg) > 1:
            position = 1
            while position < len(arg):
                letter = arg[position]
                position += 1
                if letter == "n":
                    quiet = True
                elif letter in "Er":
                    extended = True
                elif letter in "su":
                    separate = separate or letter == "s"
                elif letter == "i":
                    in_place = arg[position:]
                    break
                elif letter in "ef":
                    value = arg[position:]
                    if not value:
                        if index >= len(args):
                            raise UsageError(f"option requires an argument -- '{letter}'")
                        value, index = args[index], index + 1
                    if letter == "f":
                        value = decode(shell.read_path(value, io.stdin)).rstrip("\n")
                    scripts.append(value)
                    break
                else:
                    raise UsageError(f"invalid option -- '{letter}'")
        else:
            operands.append(arg)
    if not scripts:
        if not operands:
            raise UsageError("no script specified")
        scripts.append(operands.pop(0))
    if in_place is not None and not operands:
        raise UsageError("no input files")
    try:
        commands = _ScriptParser("\n".join(scripts), extended).parse()
    except SedError as exc:
        raise UsageError(str(exc)) from None
    groups: list[list[str]] = (
        [[name] for name in operands] if in_place is not None or separate
        else [operands or ["-"]]
    )
    status = 0
    for group in groups:
        chunks = []
        for name in group:
            try:
                chunks.append(shell.read_path(name, io.stdin))
            except OSError as exc:
                io.error(f"sed: can't read {name}: {describe(exc)}")
                status = 2
        if not chunks and group != ["-"]:
            continue
        run = _Run(shell, [_fresh(command) for command in commands], quiet,
                   _lines(b"".join(chunks)))
        run.run()
        output = encode("".join(run.out))
        if in_place is not None:
            name = group[0]
            if in_place:
                shell.write_path(name + in_place, chunks[0], io)
            shell.write_path(name, output, io)
        else:
            io.write(output)
        if run.exit_code:
            return run.exit_code
    return status


def _fresh(command: SedCommand) -> SedCommand:
    """A command with its range state cleared (each in-place file starts afresh)."""
    command.active = False
    command.end_line = 0
    return command


COMMANDS: dict[str, CommandFn] = {"sed": sed}
