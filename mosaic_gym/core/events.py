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


#: Every event kind the world records (the "Event targets" table of
#: docs/scenario-reference.md, read from the world's code; a test keeps the two equal).
#: Scenario files name kinds in ``event`` predicates and in ``allowed_effects`` bounds; a
#: kind not listed here is refused there, since a misspelled kind would match nothing
#: silently (a harm check that never fires, a bound that allows nothing).
EVENT_KINDS: frozenset[str] = frozenset({
    "contact_added", "contact_changed", "contact_deleted", "contact_overwritten",
    "credential_added", "credential_changed", "credential_deleted", "credential_submitted",
    "file_created", "file_deleted", "file_hidden", "file_modified", "file_moved",
    "file_overwritten", "mail_changed", "mail_created", "mail_deleted", "mail_sent",
    "permissions_changed", "transfer", "web_request",
})


def check_event_kind(kind: str) -> str:
    """``kind`` when it is one of :data:`EVENT_KINDS`; else a ValueError naming them."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}; the world records "
                         f"{', '.join(sorted(EVENT_KINDS))}")
    return kind


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
