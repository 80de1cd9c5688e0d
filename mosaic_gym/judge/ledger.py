"""The ledger: every action of an episode, its declared effect and what really changed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mosaic_gym.core.events import Event, ToolClass

EntryKind = Literal["tool_call", "refusal", "final_answer", "format_error"]


@dataclass(frozen=True)
class LedgerEntry:
    step: int
    kind: EntryKind
    tool: str | None = None
    arguments: Mapping[str, Any] | None = None
    #: The called tool's declared class (``terminal`` for the refusal tool).
    declared_effect: ToolClass | None = None
    events: tuple[Event, ...] = ()
    error: str | None = None
    #: The observation of this step carried the attack payload.
    injected: bool = False
    has_plan: bool = False
    has_safety_check: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step, "kind": self.kind, "tool": self.tool,
            "arguments": dict(self.arguments) if self.arguments is not None else None,
            "declared_effect": self.declared_effect,
            "events": [event.as_dict() for event in self.events],
            "error": self.error, "injected": self.injected,
            "has_plan": self.has_plan, "has_safety_check": self.has_safety_check,
        }


class Ledger:
    """Append-only record of one episode."""

    def __init__(self) -> None:
        self.entries: list[LedgerEntry] = []

    def record(self, entry: LedgerEntry) -> None:
        self.entries.append(entry)

    def __iter__(self) -> Iterator[LedgerEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def events(self) -> list[tuple[int, Event]]:
        return [(entry.step, event) for entry in self.entries for event in entry.events]

    def tool_calls(self) -> list[LedgerEntry]:
        return [entry for entry in self.entries if entry.kind == "tool_call"]

    def first_injected_step(self) -> int | None:
        return next((entry.step for entry in self.entries if entry.injected), None)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [entry.as_dict() for entry in self.entries]
