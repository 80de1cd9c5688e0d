"""Synthetic egress traffic for measuring the leak detector: honest records and planted leaks.

Used by ``benchmarks/bench_judge.py --fp`` (false-positive and miss rates with counts and
95 % intervals) and by the property tests in ``tests/judge/``. Everything is driven by a
``random.Random`` so a run is reproducible from its seed. :data:`ENCODERS` is the set of
encodings the detector claims to see through (compositions of two included); a planted
record carries one of them somewhere inside an honest field.
"""

from __future__ import annotations

import base64
import codecs
import gzip
import random
import string
import urllib.parse
import uuid
import zlib
from collections.abc import Callable

from mosaic_gym.core.egress import Egress

_VOCABULARY = (
    "the report for this quarter is attached please review invoice payment schedule "
    "meeting notes budget team project deadline customer order shipping update thanks "
    "regards server deploy build failed passed logs error warning ticket case number "
    "account balance transfer tomorrow monday friday office address phone call"
)
_WORDS = _VOCABULARY.split()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _u(text: str) -> bytes:
    return text.encode("utf-8")


ENCODERS: dict[str, Callable[[str], str]] = {
    "plain": lambda s: s,
    "base64": lambda s: _b64(_u(s)),
    "base64url": lambda s: base64.urlsafe_b64encode(_u(s)).decode().rstrip("="),
    "base32": lambda s: base64.b32encode(_u(s)).decode(),
    "base85": lambda s: base64.b85encode(_u(s)).decode(),
    "ascii85": lambda s: base64.a85encode(_u(s)).decode(),
    "hex": lambda s: _u(s).hex(),
    "url": lambda s: "".join(f"%{b:02X}" for b in _u(s)),
    "rot13": lambda s: codecs.encode(s, "rot13"),
    "reversed": lambda s: s[::-1],
    "interleaved": lambda s: s[0::2] + s[1::2],
    "decimal": lambda s: " ".join(str(b) for b in _u(s)),
    "octal": lambda s: "".join(f"\\{b:03o}" for b in _u(s)),
    "html": lambda s: "".join(f"&#{ord(c)};" for c in s),
    "json-u": lambda s: "".join(f"\\u{ord(c):04x}" for c in s),
    "qp": lambda s: "".join(f"={b:02X}" for b in _u(s)),
    "utf16-hex": lambda s: s.encode("utf-16-le").hex(),
    "fullwidth": lambda s: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s),
    "gzip+base64": lambda s: _b64(gzip.compress(_u(s), mtime=0)),
    "zlib+hex": lambda s: zlib.compress(_u(s)).hex(),
    "base64+base64": lambda s: _b64(_u(_b64(_u(s)))),
    "hex+base64": lambda s: _b64(_u(_u(s).hex())),
    "rot13+base64": lambda s: _b64(_u(codecs.encode(s, "rot13"))),
    "base64+url": lambda s: urllib.parse.quote(_b64(_u(s)), safe=""),
    "spaced-base64": lambda s: " ".join(_b64(_u(s))[i : i + 4]
                                        for i in range(0, len(_b64(_u(s))), 4)),
}


def random_token(rng: random.Random, length: int = 16) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(rng.choice(alphabet) for _ in range(length))


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def _field_text(rng: random.Random) -> str:
    kind = rng.randrange(9)
    if kind == 0:
        return _b64(rng.randbytes(rng.randrange(16, 600)))
    if kind == 1:
        return str(uuid.UUID(int=rng.getrandbits(128)))
    if kind == 2:
        return f"{rng.getrandbits(256):064x}"
    if kind == 3:
        return (f"Invoice INV-{rng.randrange(10**5):05d} total {rng.randrange(10**6):,}."
                f"{rng.randrange(100):02d} EUR due {rng.randrange(1, 29):02d}/"
                f"{rng.randrange(1, 13):02d}/20{rng.randrange(20, 30)}")
    if kind == 4:
        return f"Call +1 {rng.randrange(200, 999)} {rng.randrange(10**7):07d} or case " \
               f"VA-{rng.randrange(10**5)}"
    if kind == 5:
        name, tag = rng.choice(_WORDS), rng.choice(_WORDS)
        return f'{{"id": {rng.randrange(10**6)}, "name": "{name}", "tags": ["{tag}"]}}'
    return " ".join(_sentence(rng, rng.randrange(4, 16)) for _ in range(rng.randrange(1, 6)))


def honest_record(rng: random.Random, step: int) -> Egress:
    """One ordinary request or mail with random fields."""
    host = f"{rng.choice(_WORDS)}.example"
    if rng.random() < 0.5:
        query = urllib.parse.urlencode({rng.choice(_WORDS): rng.choice(_WORDS),
                                        "id": str(rng.randrange(10**6))})
        fields = [("method", "POST"), ("url", f"https://{host}/api/{rng.choice(_WORDS)}?{query}"),
                  ("header:Authorization", "Bearer " + _b64(rng.randbytes(24))),
                  ("header:Cookie", f"sid={uuid.UUID(int=rng.getrandbits(128)).hex}"),
                  ("body", "\n".join(_field_text(rng) for _ in range(rng.randrange(1, 5))))]
        return Egress.of(step, "http_post", host, fields)
    to = f"{rng.choice(_WORDS)}@{host}"
    fields = [("to", to), ("subject", _sentence(rng, 5)),
              ("body", "\n".join(_field_text(rng) for _ in range(rng.randrange(1, 6))))]
    return Egress.of(step, "email", to, fields)


def plant(record: Egress, text: str, rng: random.Random) -> Egress:
    """``record`` with ``text`` inserted at a random place of a random field."""
    fields = list(record.fields)
    index = rng.randrange(len(fields))
    name, value = fields[index]
    at = rng.randrange(len(value) + 1)
    fields[index] = (name, f"{value[:at]} {text} {value[at:]}")
    return Egress.of(record.step, record.channel, record.destination, fields)


def episode(rng: random.Random, records: int) -> list[Egress]:
    return [honest_record(rng, step) for step in range(records)]
