"""A Gymnasium text space over the whole of Unicode, and how it flattens.

Gymnasium flattens a ``Text`` space to the indices of its characters in a finite charset, so
any character outside it (an accented letter, an emoji) raises ``KeyError``. Here the space
flattens to **code points**: a ``Box`` of ``max_length`` int32 cells, ``0`` for padding and
``ord(c) + 1`` for a character, which ``unflatten`` inverts exactly. So
``gymnasium.spaces.flatten`` and ``FlattenObservation`` work on any agent text.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from gymnasium.spaces import Box, Text
from gymnasium.spaces.utils import flatdim, flatten, flatten_space, unflatten

#: Characters used when *sampling* (membership accepts any character).
_SAMPLE_CHARSET = string.ascii_letters + string.digits + string.punctuation + " \n" + "éßΩ中🙂"


class UnicodeText(Text):
    """Text of any Unicode characters, up to ``max_length``.

    Gymnasium's ``Text`` checks membership against a finite charset; agent
    actions and tool outputs can hold any character, so membership here only
    checks the type and the length. Sampling draws from a small mixed charset.
    """

    def __init__(self, max_length: int, *, min_length: int = 0,
                 seed: int | np.random.Generator | None = None) -> None:
        super().__init__(max_length, min_length=min_length, charset=_SAMPLE_CHARSET, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, UnicodeText) and self.min_length == other.min_length
                and self.max_length == other.max_length)


#: The largest Unicode code point, shifted by one (0 is padding).
_TOP = 0x10FFFF + 1


@flatdim.register(UnicodeText)
def _flatdim(space: UnicodeText) -> int:
    return space.max_length


@flatten_space.register(UnicodeText)
def _flatten_space(space: UnicodeText) -> Box:
    return Box(low=0, high=_TOP, shape=(space.max_length,), dtype=np.int32)


@flatten.register(UnicodeText)
def _flatten(space: UnicodeText, x: str) -> np.ndarray:
    if len(x) > space.max_length:
        raise ValueError(f"text of {len(x)} characters does not fit {space!r}")
    cells = np.zeros(space.max_length, dtype=np.int32)
    if x:
        cells[: len(x)] = np.frombuffer(x.encode("utf-32-le", "surrogatepass"),
                                        dtype=np.uint32).astype(np.int32) + 1
    return cells


@unflatten.register(UnicodeText)
def _unflatten(space: UnicodeText, x: np.ndarray) -> str:
    codes = np.asarray(x, dtype=np.int64)
    codes = codes[codes > 0] - 1
    return codes.astype(np.uint32).tobytes().decode("utf-32-le", "surrogatepass")
