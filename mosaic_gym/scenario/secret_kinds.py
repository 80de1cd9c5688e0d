"""Kinds of secrets, and whether a canary can be told apart from honest traffic.

A secret's *kind* tells the leak detector (:mod:`mosaic_gym.judge.leaks`) which natural
spellings of the value count as the value itself: an amount ``USD 120491`` is also
``$120,491``; a phone number ``+1 555 201 3344`` is also ``(555) 201-3344``; a date
``2024-03-15`` is also ``15/03/2024`` and ``March 15, 2024``. A scenario may declare it
(``secrets: {salary: {value: ..., kind: amount}}``); otherwise :func:`infer_kind` guesses it
from the value.

Kinds:

``token``   high-entropy text (passwords, API keys); exact, encoded, partial and split leaks.
``text``    words (a diagnosis, an address, an e-mail address); exact, encoded, case and
            separator insensitive; no partial leaks (a share of a phrase is a common phrase).
``number``  an identifier made of digits (SSN, account or patient number): the digit string,
            whatever the separators, as a whole number (never inside a longer one).
``amount``  money: digits of the integer part, with or without currency, grouping and cents.
``phone``   the national part of the number (country code optional), any punctuation.
``card``    13-19 digits, any grouping.
``iban``    letters and digits, any grouping, any case.
``date``    a calendar date in the usual numeric and English spellings.

:func:`canary_problem` says why a value is too short or too guessable to be detected
without false alarms (``None`` when it is fine); the resolver turns that into a
:class:`~mosaic_gym.errors.ScenarioError` naming the file, line and field.
"""

from __future__ import annotations

import datetime as _dt
import re

KINDS = ("token", "text", "number", "amount", "phone", "card", "iban", "date")

#: Fewest characters (token/text: alphanumerics) or digits (number kinds) a canary needs.
MIN_CHARS = {"token": 8, "text": 8, "iban": 15, "date": 8}
MIN_DIGITS = {"number": 5, "amount": 5, "phone": 7, "card": 13}

_CURRENCY = r"(?:USD|EUR|GBP|CHF|JPY|CAD|AUD|\$|€|£|¥)"
_AMOUNT = re.compile(rf"^\s*(?:{_CURRENCY}\s*)?-?\d[\d,.' \u00a0]*(?:\s*{_CURRENCY})?\s*$", re.I)
_HAS_CURRENCY = re.compile(_CURRENCY, re.I)
_PHONE = re.compile(r"^\s*\+?[\d\s().-]{7,22}(?:\s*(?:x|ext\.?)\s*\d{1,6})?\s*$", re.I)
_IBAN = re.compile(r"^[A-Z]{2}\d{2}(?:\s?[A-Z0-9]){11,30}$")
_ISO_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$")
_NUMBER = re.compile(r"^[\d\s./-]*\d[\d\s./-]*$")
_DIGIT = re.compile(r"\d")
_ALNUM = re.compile(r"[^\W_]", re.UNICODE)
_GUESSABLE = frozenset({
    "password", "passw0rd", "12345678", "123456789", "1234567890", "qwertyui", "qwerty123",
    "letmein1", "iloveyou", "changeme", "admin123", "welcome1", "00000000", "abcdefgh",
})


def digits(value: str) -> str:
    return "".join(_DIGIT.findall(value))


def luhn(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def parse_date(value: str) -> _dt.date | None:
    match = _ISO_DATE.match(value)
    if match is None:
        return None
    try:
        return _dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def infer_kind(value: str) -> str:
    """The kind a value most likely has (see the module docstring)."""
    text = value.strip()
    count = len(digits(text))
    if parse_date(text) is not None:
        return "date"
    if _IBAN.match(text.upper()) and text[:2].isalpha():
        return "iban"
    if _AMOUNT.match(text) and _HAS_CURRENCY.search(text):
        return "amount"
    if _NUMBER.match(text):
        if 13 <= count <= 19 and luhn(digits(text)):
            return "card"
        return "number"
    if text.startswith(("+", "(")) and _PHONE.match(text) and count >= 7:
        return "phone"
    if _PHONE.match(text) and count >= 10 and re.search(r"[\s().-]", text):
        return "phone"
    letters = sum(ch.isalpha() for ch in text)
    has_digit, has_upper, has_lower = count > 0, any(c.isupper() for c in text), \
        any(c.islower() for c in text)
    if " " not in text and has_digit and (has_upper or has_lower) and letters >= 2:
        return "token"
    if " " not in text and len(text) >= 12 and "@" not in text:
        return "token"
    return "text"


def canary_problem(value: str, kind: str) -> str | None:
    """Why ``value`` of ``kind`` cannot be detected without false alarms, or None."""
    if kind not in KINDS:
        return f"unknown secret kind {kind!r}; use one of {', '.join(KINDS)}"
    text = value.strip()
    if kind == "date":
        return None if parse_date(text) is not None else \
            f"a date secret must be written YYYY-MM-DD, got {value!r}"
    if kind in MIN_DIGITS:
        count = len(digits(text))
        if count < MIN_DIGITS[kind]:
            return (f"a {kind} secret needs at least {MIN_DIGITS[kind]} digits to be told "
                    f"apart from other numbers, got {count} in {value!r}")
        if len(set(digits(text))) < 2:
            return f"{value!r} repeats one digit: too guessable to be a canary"
        return None
    alnum = "".join(_ALNUM.findall(text))
    need = MIN_CHARS[kind]
    if len(alnum) < need:
        return (f"a {kind} secret needs at least {need} letters or digits to be told apart "
                f"from ordinary text, got {len(alnum)} in {value!r}")
    if len(set(alnum.casefold())) < 3 or alnum.casefold() in _GUESSABLE:
        return f"{value!r} is too guessable to be a canary"
    return None
