"""The tool runtime: the one place that dispatches a tool call.

``ToolRuntime.run(name, arguments)`` does, in order: look the tool up among the episode's
tools, validate the arguments with the tool's pydantic model, snapshot the world, call the
tool, snapshot again and diff, and turn every failure into the right kind of result:

* a mistake of the agent (unknown tool, bad arguments, a ``ToolError`` raised by the tool)
  becomes an error *observation*; the episode goes on;
* anything else that escapes (a bug in a tool, a broken snapshot or diff, even
  ``SystemExit`` raised by code the tool ran) is an *infrastructure error*: the episode ends
  and is judged ``infra_error``, never "safe" (fail closed). Only ``KeyboardInterrupt`` and
  ``GeneratorExit`` propagate, so a user can still stop the process.

Snapshots are cheap where the world can tell what changed: the world caches each part of its
snapshot (files, mail, vault, bank, web, contacts) under that part's version counter and diffs
only the parts whose version moved, so a call pays for what it changed, whatever effect it
declared (a declared effect is a promise, and the judge measures harm from state, not from
promises). A backend that cannot count its changes (docker) is snapshotted whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mosaic_gym.core.events import Event
from mosaic_gym.errors import ToolError
from mosaic_gym.tools.registry import Tool, ToolRegistry
from mosaic_gym.world.world import World


@dataclass(frozen=True)
class CallResult:
    """What one tool call did."""

    name: str
    arguments: Mapping[str, Any]
    observation: str
    tool: Tool | None = None
    events: tuple[Event, ...] = field(default=())
    #: The agent's mistake, shown to it as the observation (the episode goes on).
    error: str | None = None
    #: The environment failed: the episode ends judged ``infra_error``.
    infra_error: str | None = None

    @property
    def terminal(self) -> bool:
        """A terminal tool (``refusal_tool``) ran successfully: the episode ends."""
        return (self.tool is not None and self.tool.terminal and self.error is None
                and self.infra_error is None)


class ToolRuntime:
    """Runs the calls of one episode against its world."""

    def __init__(self, tools: ToolRegistry, world: World) -> None:
        self.tools = tools
        self.world = world

    def run(self, name: str, arguments: Mapping[str, Any], *, step: int = 0) -> CallResult:
        """Dispatch one call (see the module docstring for what can come back)."""
        item = self.tools.get(name)
        if item is None:
            error = (f"Error: unknown tool {name!r}. Available tools: "
                     f"{', '.join(self.tools.names())}")
            return CallResult(name, arguments, error, error=error)
        try:
            clean = item.validate(arguments)
        except ToolError as exc:
            return CallResult(name, arguments, f"Error: {exc}", item, error=f"Error: {exc}")
        self.world.step = step
        try:
            before = self.world.snapshot()
        except _FATAL:
            raise
        except BaseException as exc:  # noqa: BLE001 - fail closed, whatever broke
            return self._crash(name, arguments, item, "snapshot before the call", exc)
        error: str | None = None
        infra: str | None = None
        try:
            observation = item.function(self.world, **clean)
        except ToolError as exc:
            error = observation = f"Error: {exc}"
        except _FATAL:
            raise
        except BaseException as exc:  # noqa: BLE001 - fail closed, whatever broke
            infra = f"{name} failed: {type(exc).__name__}: {str(exc)[:400]}"
            observation = f"Error: the environment failed ({type(exc).__name__})."
        try:
            events = tuple(self.world.diff(before, self.world.snapshot()))
        except _FATAL:
            raise
        except BaseException as exc:  # noqa: BLE001
            return self._crash(name, arguments, item, "diff after the call", exc)
        if not isinstance(observation, str):
            infra = f"{name} returned {type(observation).__name__}, not text"
            observation = "Error: the environment failed (bad tool result)."
        return CallResult(name, arguments, observation, item, events, error, infra)

    @staticmethod
    def _crash(name: str, arguments: Mapping[str, Any], item: Tool, where: str,
               exc: BaseException) -> CallResult:
        return CallResult(name, arguments,
                          f"Error: the environment failed ({type(exc).__name__}).", item,
                          infra_error=f"{where} of {name} failed: {type(exc).__name__}: {exc}")


#: What the runtime lets through: the user stopping the process.
_FATAL = (KeyboardInterrupt, GeneratorExit)
