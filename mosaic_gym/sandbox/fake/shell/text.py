"""Commands that transform text: wc, sort, uniq, cut, tr, base64, checksums, tac, rev."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import TYPE_CHECKING

from mosaic_gym.sandbox.fake.shell.limits import MAX_TR_SET, check_size
from mosaic_gym.sandbox.fake.shell.printing import unescape
from mosaic_gym.sandbox.fake.shell.streams import (
    CommandFn,
    StreamIO,
    UsageError,
    decode,
    describe,
    encode,
    parse_options,
)

if TYPE_CHECKING:
    from mosaic_gym.sandbox.fake.shell.interpreter import Shell

_CLASSES = {
    "alpha": "A-Za-z", "digit": "0-9", "alnum": "A-Za-z0-9", "upper": "A-Z", "lower": "a-z",
    "space": " \t\n\r\f\v", "blank": " \t", "punct": "!-/:-@[-`{-~", "xdigit": "0-9A-Fa-f",
}  # fmt: skip


def wc(shell: Shell, argv: list[str], io: StreamIO) -> int:
    long_names = {"--lines": "l", "--words": "w", "--bytes": "c", "--chars": "m"}
    options = parse_options(argv[1:], "lwcmL", long=long_names)
    kinds = [k for k in "lwmc" if k in options] or ["l", "w", "c"]
    rows: list[tuple[list[int], str]] = []
    status = 0
    for name in options.operands or ["-"]:
        try:
            data = shell.read_path(name, io.stdin)
        except OSError as exc:
            io.error(f"wc: {name}: {describe(exc)}")
            status = 1
            continue
        counts = {"l": data.count(b"\n"), "w": len(data.split()), "c": len(data),
                  "m": len(decode(data))}  # fmt: skip
        rows.append(([counts[k] for k in kinds], "" if name == "-" else name))
    if len(rows) > 1:
        rows.append(([sum(row[0][i] for row in rows) for i in range(len(kinds))], "total"))
    single = len(kinds) == 1 and len(rows) == 1
    width = 1 if single else max([len(str(n)) for row in rows for n in row[0]] + [1])
    if not options.operands and not single:
        width = max(width, 7)
    for numbers, name in rows:
        line = " ".join(f"{n:>{width}}" for n in numbers)
        io.write(f"{line} {name}\n" if name else line + "\n")
    return status


def _input_lines(shell: Shell, io: StreamIO, operands: list[str], name: str) -> list[str]:
    data = b"".join(shell.read_path(operand, io.stdin) for operand in operands or ["-"])
    return decode(data).splitlines()


def sort(shell: Shell, argv: list[str], io: StreamIO) -> int:
    long_names = {"--reverse": "r", "--numeric-sort": "n", "--unique": "u"}
    options = parse_options(argv[1:], "rnufbdhVsM", "kto", long_names)
    lines = _input_lines(shell, io, options.operands, "sort")
    separator = options.value("t")
    key_spec = options.value("k")

    def key(line: str) -> tuple[float, str]:
        text = line
        if key_spec:
            match = re.match(r"(\d+)(?:\.\d+)?[a-zA-Z]*(?:,(\d+))?", key_spec)
            if match is None:
                raise UsageError(
                    f"invalid number at field start: invalid count at start of '{key_spec}'", 2
                )
            fields = line.split(separator) if separator else line.split()
            start = int(match.group(1)) - 1
            end = int(match.group(2)) if match.group(2) else len(fields)
            text = (separator or " ").join(fields[start:end])
        if "f" in options:
            text = text.lower()
        if "n" in options or "h" in options:
            number = re.match(r"\s*(-?\d+(?:\.\d+)?)", text)
            return (float(number.group(1)) if number else 0.0, line)
        return (0.0, text)

    ordered = sorted(lines, key=key, reverse="r" in options)
    if "u" in options:
        seen: set[tuple[float, str]] = set()
        unique = []
        for line in ordered:
            if key(line) not in seen:
                seen.add(key(line))
                unique.append(line)
        ordered = unique
    output = "".join(line + "\n" for line in ordered)
    if options.value("o"):
        shell.write_path(options.value("o") or "", encode(output), io)
    else:
        io.write(output)
    return 0


def uniq(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(argv[1:], "cdui", long={"--count": "c"})
    lines = _input_lines(shell, io, options.operands[:1], "uniq")
    groups: list[list[str]] = []
    for line in lines:
        same = groups and (
            groups[-1][0].lower() == line.lower() if "i" in options else groups[-1][0] == line
        )
        if same:
            groups[-1].append(line)
        else:
            groups.append([line])
    out = []
    for group in groups:
        if ("d" in options and len(group) < 2) or ("u" in options and len(group) > 1):
            continue
        out.append((f"{len(group):7} " if "c" in options else "") + group[0] + "\n")
    io.write("".join(out))
    return 0


def _ranges(spec: str) -> list[tuple[int, int]]:
    ranges = []
    for part in spec.split(","):
        match = re.fullmatch(r"(\d*)-(\d*)|(\d+)", part.strip())
        if match is None or part.strip() in ("-", ""):
            raise UsageError(f"invalid field value '{part}'")
        if match.group(3):
            ranges.append((int(match.group(3)), int(match.group(3))))
        else:
            ranges.append((int(match.group(1) or 1), int(match.group(2) or 1 << 30)))
    if any(start < 1 for start, _ in ranges):
        raise UsageError("fields and positions are numbered from 1")
    return ranges


def cut(shell: Shell, argv: list[str], io: StreamIO) -> int:
    long_names = {"--delimiter": "d", "--fields": "f", "--characters": "c", "--bytes": "b"}
    options = parse_options(argv[1:], "sn", "dfcb", long_names)
    spec = options.value("f") or options.value("c") or options.value("b")
    if spec is None:
        raise UsageError("you must specify a list of bytes, characters, or fields")
    ranges = _ranges(spec)
    delimiter = options.value("d", "\t") or "\t"
    for line in _input_lines(shell, io, options.operands, "cut"):
        if "f" in options:
            if delimiter not in line:
                if "s" not in options:
                    io.write(line + "\n")
                continue
            parts = line.split(delimiter[0])
        else:
            parts = list(line)
        chosen = [p for i, p in enumerate(parts, 1) if any(a <= i <= b for a, b in ranges)]
        io.write(("" if "f" not in options else delimiter[0]).join(chosen) + "\n")
    return 0


def _tr_set(spec: str) -> str:
    spec = unescape(spec, octal_needs_zero=False)[0]
    for name, members in _CLASSES.items():
        spec = spec.replace(f"[:{name}:]", members)
    chars: list[str] = []
    index = 0
    while index < len(spec):
        if index + 2 < len(spec) and spec[index + 1] == "-" and spec[index] <= spec[index + 2]:
            start, end = ord(spec[index]), ord(spec[index + 2])
            codes: range | list[int] = range(start, end + 1)
            if start < 0x80 and 0xDC80 <= end <= 0xDCFF:
                # tr works on bytes: '\000-\377' is ASCII then the raw bytes 0x80..0xff
                # (kept as surrogate escapes), not the 56,000 code points in between.
                codes = [*range(start, 0x80), *range(0xDC80, end + 1)]
            # Checked before the range is built: one range may span 50,000 code points.
            check_size("tr set", len(chars) + len(codes), MAX_TR_SET)
            chars.extend(chr(code) for code in codes)
            index += 3
        else:
            chars.append(spec[index])
            index += 1
    check_size("tr set", len(chars), MAX_TR_SET)
    return "".join(chars)


def tr(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(argv[1:], "dscCt")
    sets = [_tr_set(spec) for spec in options.operands]
    if not sets or (len(sets) < 2 and "d" not in options and "s" not in options):
        raise UsageError("missing operand")
    text = decode(io.stdin)
    first = sets[0]
    if "c" in options or "C" in options:
        first = "".join(sorted(set(text) - set(first)))
    if "d" in options:
        removed = set(first)
        text = "".join(c for c in text if c not in removed)
    elif len(sets) > 1:
        target = sets[1] or " "
        target += target[-1] * max(0, len(first) - len(target))
        text = text.translate(str.maketrans(first, target[: len(first)]))
    if "s" in options:
        squeeze = set(sets[-1] if len(sets) > 1 or "d" in options else first)
        kept: list[str] = []
        for char in text:
            if not (kept and char == kept[-1] and char in squeeze):
                kept.append(char)
        text = "".join(kept)
    io.write(text)
    return 0


def base64_command(shell: Shell, argv: list[str], io: StreamIO) -> int:
    options = parse_options(argv[1:], "di", "w", {"--decode": "d", "--wrap": "w"})
    data = b"".join(shell.read_path(name, io.stdin) for name in options.operands or ["-"])
    if "d" in options:
        cleaned = re.sub(rb"[^A-Za-z0-9+/=]" if "i" in options else rb"\s", b"", data)
        try:
            io.write(base64.b64decode(cleaned + b"=" * (-len(cleaned) % 4), validate=True))
        except (binascii.Error, ValueError):
            io.error("base64: invalid input")
            return 1
        return 0
    encoded = base64.b64encode(data).decode()
    width = options.value("w") or "76"
    wrap = int(width) if width.isascii() and width.isdigit() else 76
    if wrap:
        encoded = "\n".join(encoded[i : i + wrap] for i in range(0, len(encoded), wrap))
    io.write(encoded + "\n" if encoded or not wrap else "")
    return 0


def checksum(shell: Shell, argv: list[str], io: StreamIO) -> int:
    algorithm = argv[0].removesuffix("sum")
    options = parse_options(argv[1:], "btz")
    status = 0
    for name in options.operands or ["-"]:
        try:
            data = shell.read_path(name, io.stdin)
        except OSError as exc:
            io.error(f"{argv[0]}: {name}: {describe(exc)}")
            status = 1
            continue
        io.write(f"{hashlib.new(algorithm, data).hexdigest()}  {name}\n")
    return status


def _per_line(transform: str) -> CommandFn:
    def command(shell: Shell, argv: list[str], io: StreamIO) -> int:
        lines = _input_lines(shell, io, argv[1:], argv[0])
        result = lines[::-1] if transform == "tac" else [line[::-1] for line in lines]
        io.write("".join(line + "\n" for line in result))
        return 0

    return command


COMMANDS: dict[str, CommandFn] = {
    "wc": wc,
    "sort": sort,
    "uniq": uniq,
    "cut": cut,
    "tr": tr,
    "base64": base64_command,
    "sha256sum": checksum,
    "sha1sum": checksum,
    "sha512sum": checksum,
    "md5sum": checksum,
    "tac": _per_line("tac"),
    "rev": _per_line("rev"),
}
