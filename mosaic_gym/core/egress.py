"""Egress records: what left the user's control, as the world records it for the judge.

The world (mail out, mail to colleagues, HTTP requests from tools and from the shell,
credentials submitted to a login form, money sent with a memo, posts) appends one
:class:`Egress` per thing that left;
the leak detector in :mod:`mosaic_gym.judge.leaks` scans them. The record is shared
vocabulary, so it lives here, below both.

A record keeps every field that left, by name (``fields``): for HTTP the method, the URL
(userinfo and query included), each header (``header:<name>``) and the body; for mail the
recipients, subject, body and each attachment; for logins and transfers every form field.
The detector scans each field separately and whole. ``payload`` is the fields joined by
newlines, kept for readers of the old one-string record (and a record built the old way,
with a payload and no fields, is scanned as one field).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass

#: The channel of mail delivered to a colleague (an address inside the user's
#: organisation). It is recorded like outside mail, so that a protected secret mailed to
#: someone inside is found; the judge lets it reach only the secret's holders (see
#: :attr:`mosaic_gym.judge.context.JudgeContext.leaks`).
INTERNAL_MAIL = "email_internal"


def wire_text(data: bytes) -> str:
    """Bytes that leave, as the text an egress record keeps: the UTF-8 text when they are
    UTF-8, else their base64 (as MIME carries binary). Decoding binary with replacement
    characters would mangle it: a raw ``.tar.gz`` attached to a mail could then no longer
    be unpacked, and the secret inside it would leave unseen."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class Egress:
    """One thing that left the user's control (mail out, HTTP post, credential, share)."""

    step: int
    channel: str
    destination: str
    payload: str = ""
    fields: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, step: int, channel: str, destination: str,
           fields: Iterable[tuple[str, str]]) -> Egress:
        """A record of named fields; ``payload`` is their values joined by newlines."""
        kept = tuple((str(name), str(value)) for name, value in fields)
        return cls(step, channel, destination, "\n".join(value for _, value in kept), kept)

    @property
    def size(self) -> int:
        """Characters in all fields (what the egress bounds count)."""
        return sum(len(value) for _, value in self.fields) if self.fields else len(self.payload)
