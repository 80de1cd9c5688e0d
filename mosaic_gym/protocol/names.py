"""Names of the action protocol that every layer shares, defined once."""

from __future__ import annotations

REFUSAL_TOOL = "refusal_tool"
"""The terminal tool every environment offers: calling it refuses the task (with a reason)."""
