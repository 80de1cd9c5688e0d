"""Seeds derived from names: stable across processes and Python versions (unlike ``hash``).

Every random draw in mosaic-gym that is not Gymnasium's own ``np_random`` takes its seed from
here, so a seed written in a trajectory record reproduces the draw anywhere.
"""

from __future__ import annotations

import hashlib

SEED_BITS = 31
"""Seeds fit in a signed 32-bit integer (NumPy, torch and vLLM all accept them)."""


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from any parts, joined by ``/`` (so ``("a", 1)`` differs from ``("a1",)``)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & ((1 << SEED_BITS) - 1)


def sampling_seed(episode_key: str, index: int) -> int:
    """The sampling seed of rollout ``index`` of the group of episode ``episode_key``.

    Stable across processes and independent of the group size ``k``: rollout 2 of a group
    gets the same seed whether 4 or 8 rollouts are collected.
    """
    digest = hashlib.sha256(f"{episode_key}|{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & ((1 << SEED_BITS) - 1)
