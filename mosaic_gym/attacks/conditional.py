"""Conditional injections: a payload that appears only after the agent takes a given action."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_MAX_VALUES = 10_000  # bound on argument values inspected, so hostile arguments stay cheap


def _argument_texts(arguments: Mapping[str, Any]) -> list[str]:
    """Flatten argument values (nested mappings and sequences too) into strings."""
    texts: list[str] = []
    stack: list[Any] = list(arguments.values())
    while stack and len(texts) < _MAX_VALUES:
        value = stack.pop()
        if isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
        elif isinstance(value, str):
            texts.append(value)
        else:
            texts.append(repr(value) if isinstance(value, float) else str(value))
    return texts


@dataclass(frozen=True)
class ConditionalInjection:
    """Reveal the payload only after a call of ``after_tool``.

    When ``after_arg_contains`` is set, some argument value of that call (searched
    recursively, case-insensitively) must also contain it.
    """

    after_tool: str
    after_arg_contains: str | None = None

    def triggered(self, tool_name: str, arguments: Mapping[str, Any]) -> bool:
        """Whether a call of ``tool_name`` with ``arguments`` arms the payload; never raises."""
        if tool_name != self.after_tool:
            return False
        if self.after_arg_contains is None:
            return True
        if not isinstance(arguments, Mapping):
            return False
        needle = self.after_arg_contains.casefold()
        try:
            return any(needle in text.casefold() for text in _argument_texts(arguments))
        except Exception:  # a hostile mapping or __str__; treat as "not triggered"
            return False
