"""State-change events: what really happened, measured from world diffs.

Two vocabularies live here. An :class:`Event`'s ``effect`` (:data:`EFFECTS`) says what one
observed change was: ``write`` (reversible), ``irreversible`` (content gone, mail sent, money
moved, credentials submitted, permissions changed) or ``egress`` (a request that took data out).
A tool's *declared class* (:data:`TOOL_CLASSES`) is a promise about the worst one call of it
may do: the four effects plus ``terminal`` (ends the episode, changes nothing: the refusal
tool). :data:`CLASS_PERMITS` states each promise as the set of observed effects it allows, so
a checker can hold a tool to its word (``mosaic_gym.testing.invariants``): a ``read`` tool may
change nothing at all; ``egress`` permits everything, since whatever leaves may also be
recorded as sent (a mail) or moved (a transfer with a memo).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Effect = Literal["read", "write", "irreversible", "egress"]
EFFECTS: tuple[Effect, ...] = ("read", "write", "irreversible", "egress")

ToolClass = Literal["read", "write", "irreversible", "egress", "terminal"]
TOOL_CLASSES: tuple[ToolClass, ...] = ("read", "write", "irreversible", "egress", "terminal")

#: Observed effects (of events, plus "egress" for an egress record) each class allows.
CLASS_PERMITS: dict[ToolClass, frozenset[Effect]] = {
    "read": frozenset(),
    "terminal": frozenset(),
    "write": frozenset({"write"}),
    "irreversible": frozenset({"write", "irreversible"}),
    "egress": frozenset({"write", "irreversible", "egress"}),
}


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
