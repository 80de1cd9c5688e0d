"""State-change events: what really happened, measured from world diffs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Effect = Literal["read", "write", "irreversible", "egress"]
EFFECTS: tuple[Effect, ...] = ("read", "write", "irreversible", "egress")


@dataclass(frozen=True)
class Event:
    """One change of world state.

    ``target`` is a stable, glob-matchable name: a path for files,
    ``mail:<recipient>``, ``mail-deleted:<id>``, ``bank:<account>``,
    ``login:<host>``, ``web:<host>``, ``contact:<name>``, ``vault:<site>``.
    """

    kind: str
    target: str
    effect: Effect
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "target": self.target, "effect": self.effect,
                "detail": self.detail}
