"""Tool functions, their registry and the standard tool set."""

from __future__ import annotations

from mosaic_gym.protocol.names import STANDARD_TOOLS
from mosaic_gym.tools.registry import Tool, ToolRegistry, make_tool, tool

__all__ = ["Tool", "ToolRegistry", "make_tool", "tool", "standard_tools"]


def standard_tools() -> ToolRegistry:
    """A fresh registry with every built-in tool (refusal_tool included)."""
    from mosaic_gym.tools import builtin, services

    items = [value for module in (builtin, services) for value in vars(module).values()
             if isinstance(value, Tool)]
    registry = ToolRegistry(items)
    if tuple(registry.names()) != STANDARD_TOOLS:
        raise RuntimeError("the built-in tools and mosaic_gym.protocol.names.STANDARD_TOOLS "
                           f"disagree: {registry.names()} vs {list(STANDARD_TOOLS)}")
    return registry
