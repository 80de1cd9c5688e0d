"""Commands that print generated text: echo, printf, seq, and the fixed answers of a
deterministic machine (whoami, hostname, id, uname, date)."""

from __future__ import annotations

import datetime
import re
from typing import TYPE_CHECKING

from mosaic_gym.sandbox.fake.shell.streams import CommandFn, StreamIO, UsageError, parse_options

if TYPE_CHECKING:
    from mosaic_gym.sandbox.fake.shell.interpreter import Shell


#: ``date`` always answers this instant, so episodes are reproducible.
FIXED_NOW = datetime.datetime(2024, 1, 1, 0, 0, 0, tzinfo=datetime.timezone.utc)
#: Widths and precisions in printf formats are capped (``%999999999s`` is hostile).
MAX_WIDTH = 4096
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "a": "\a", "b": "\b", "f": "\f",
            "v": "\v", "e": "\x1b", '"': '"', "'": "'"}  # fmt: skip
_ESCAPE = re.compile(r"\\(0[0-7]{0,3}|[0-7]{1,3}|x[0-9A-Fa-f]{1,2}|c|.)", re.DOTALL)
_CONVERSION = re.compile(r"%([-+ #0]*)(\d*)(?:\.(\d*))?([sbdiouxXcfeEgG%])|%")


def unescape(text: str, *, octal_needs_zero: bool = True) -> tuple[str, bool]:
    """Backslash escapes as ``echo -e``/``printf`` read them; True when ``\\c`` stops output."""
    out: list[str] = []
    position = 0
    for match in _ESCAPE.finditer(text):
        out.append(text[position : match.start()])
        position = match.end()
        code = match.group(1)
        if code == "c":
            return "".join(out), True
        decimal = code.isascii() and code.isdigit()
        if code[0] == "x" or code[0] == "0" or (decimal and not octal_needs_zero):
            value = int(code[1:], 16) if code[0] == "x" else int(code, 8) & 0xFF
            # A byte above 0x7f is a raw byte, kept as a surrogate escape (see decode()).
            out.append(chr(value) if value < 0x80 else chr(0xDC00 + value))
        else:
            out.append(_ESCAPES.get(code, "\\" + code))
    out.append(text[position:])
    return "".join(out), False


def echo(shell: Shell, argv: list[str], io: StreamIO) -> int:
    args, newline, escapes = argv[1:], True, False
    while args and re.fullmatch(r"-[neE]+", args[0]):
        flag = args.pop(0)
        newline = newline and "n" not in flag
        escapes = ("e" in flag or escapes) and not flag.endswith("E")
    text = " ".join(args)
    if escapes:
        text, stop = unescape(text)
        newline = newline and not stop
    io.write(text + ("\n" if newline else ""))
    return 0


def printf(shell: Shell, argv: list[str], io: StreamIO) -> int:
    """``printf FORMAT [ARG]...``: %s %b %c %d %i %u %o %x %X %f %e %g with flags, width
    (capped at :data:`MAX_WIDTH`) and precision; the format repeats while args remain."""
    if len(argv) < 2:
        raise UsageError("usage: printf format [arguments]")
    fmt, args = argv[1], argv[2:]
    status = 0
    while True:
        text, used, stop, failed = _format_once(fmt, args, io)
        io.write(text)
        status |= failed
        if stop or not used or used >= len(args):
            return status
        args = args[used:]


def _format_once(fmt: str, args: list[str], io: StreamIO) -> tuple[str, int, bool, int]:
    """One pass of ``fmt``: (text, args used, stopped by ``\\c``, status)."""
    out: list[str] = []
    used = status = position = 0
    for match in _CONVERSION.finditer(fmt):
        literal, stop = unescape(fmt[position : match.start()], octal_needs_zero=False)
        out.append(literal)
        if stop:
            return "".join(out), used, True, status
        position = match.end()
        flags, width, precision, kind = match.groups()
        if kind is None or kind == "%":
            out.append("%")
            continue
        arg = args[used] if used < len(args) else ""
        used += 1
        spec = f"%{flags}{min(int(width or 0), MAX_WIDTH) or ''}"
        if precision is not None:
            spec += f".{min(int(precision or 0), MAX_WIDTH)}"
        if kind in "sbc":
            text, stop = unescape(arg, octal_needs_zero=False) if kind == "b" else (arg, False)
            out.append((spec + "s") % (text[:1] if kind == "c" else text))
            if stop:
                return "".join(out), used, True, status
            continue
        try:
            number: float = float(arg) if kind in "feEgG" else int(arg or "0", 0)
        except ValueError:
            io.error(f"printf: '{arg}': expected a numeric value")
            status, number = 1, 0
        out.append((spec + ("d" if kind in "iu" else kind)) % number)
    literal, stop = unescape(fmt[position:], octal_needs_zero=False)
    out.append(literal)
    return "".join(out), used, stop, status


def seq(shell: Shell, argv: list[str], io: StreamIO) -> int:
    args = list(argv[1:])
    separator = "\n"
    while args and args[0] in ("-s", "-w") or (args and args[0].startswith("-s")):
        flag = args.pop(0)
        if flag.startswith("-s"):
            separator = flag[2:] or (args.pop(0) if args else "\n")
    if not 1 <= len(args) <= 3:
        raise UsageError("missing operand")
    try:
        numbers: list[float] = [float(a) if "." in a or "e" in a.lower() else int(a) for a in args]
    except ValueError:
        raise UsageError(f"invalid floating point argument: '{args[-1]}'") from None
    first: float
    step: float
    last: float
    if len(numbers) == 1:
        first, step, last = 1, 1, numbers[0]
    elif len(numbers) == 2:
        first, step, last = numbers[0], 1, numbers[1]
    else:
        first, step, last = numbers
    if step == 0:
        raise UsageError("invalid Zero increment value: '0'")
    out: list[str] = []
    value = first
    while (value <= last) if step > 0 else (value >= last):
        out.append(str(value))
        value += step
        if len(out) % 1000 == 0:
            shell.budget.charge(1e-2)
            io.write(separator.join(out) + separator)
            out = []
    io.write(separator.join(out) + ("\n" if out else ""))
    return 0


def fixed(text: str) -> CommandFn:
    """A command that always prints ``text``."""

    def command(shell: Shell, argv: list[str], io: StreamIO) -> int:
        io.write(text)
        return 0

    return command


def identity(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(argv[1:], "ugGnr")
    if "u" in options or "g" in options:
        io.write("user\n" if "n" in options else "1000\n")
    else:
        io.write("uid=1000(user) gid=1000(user) groups=1000(user)\n")
    return 0


def uname(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(argv[1:], "asnrvmpio")
    fields = {"s": "Linux", "n": "sandbox", "r": "6.1.0-mosaic", "v": "#1 SMP", "m": "x86_64",
              "o": "GNU/Linux"}  # fmt: skip
    chosen = list(fields) if "a" in options else [k for k in fields if k in options] or ["s"]
    io.write(" ".join(fields[k] for k in chosen) + "\n")
    return 0


def date(shell: Shell, argv: list[str], io: StreamIO) -> int:
    formats = [arg[1:] for arg in argv[1:] if arg.startswith("+")]
    if "-I" in argv[1:] or "--iso-8601" in argv[1:]:
        formats = ["%Y-%m-%d"]
    fmt = formats[-1] if formats else "%a %b %e %H:%M:%S UTC %Y"
    try:
        io.write(FIXED_NOW.strftime(fmt) + "\n")
    except ValueError:
        io.write(fmt + "\n")
    return 0


COMMANDS: dict[str, CommandFn] = {
    "echo": echo,
    "printf": printf,
    "seq": seq,
    "whoami": fixed("user\n"),
    "hostname": fixed("sandbox\n"),
    "id": identity,
    "uname": uname,
    "date": date,
}
