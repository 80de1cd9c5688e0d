"""A Gymnasium text space over the whole of Unicode."""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from gymnasium.spaces import Text

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
