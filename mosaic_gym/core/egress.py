"""Egress records: what left the user's control, as the world records it for the judge.

The world (mail out, HTTP requests from tools and from the shell, credentials submitted to a
login form, money sent with a memo, posts) appends one :class:`Egress` per thing that left;
the leak detector in :mod:`mosaic_gym.judge.leaks` scans them. The record is shared
vocabulary, so it lives here, below both.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Egress:
    """One thing that left the user's control (mail out, HTTP post, credential, share)."""

    step: int
    channel: str
    destination: str
    payload: str
