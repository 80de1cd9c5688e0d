"""Typed errors raised (or returned to the agent) by mosaic-gym.

The rule of thumb: an error in *input the user gave us* (a scenario file, a
config) raises; an error caused by *the agent's action* (bad tool arguments, a
hostile shell command) becomes a :class:`ToolError` that the environment turns
into an observation, never an exception out of ``env.step``.
"""

from __future__ import annotations


class MosaicError(Exception):
    """Base class of every error mosaic-gym raises on purpose."""


class ScenarioError(MosaicError):
    """A scenario file is malformed or inconsistent.

    The message always names the file, and where known the line and the field,
    so an author can jump straight to the mistake.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.reason = message
        where = file or "<scenario>"
        if line is not None:
            where += f":{line}"
        if field:
            where += f" [{field}]"
        super().__init__(f"{where}: {message}")


class SandboxError(MosaicError):
    """The sandbox infrastructure failed (not the agent's command).

    Raised for engine failures, lost containers and the like. The environment
    marks the episode ``infra_error`` when this escapes a step.
    """


class ToolError(MosaicError):
    """A tool call failed because of what the agent asked for.

    Returned to the agent as the observation text; the episode goes on.
    """


class ToolRegistrationError(MosaicError):
    """A tool function cannot be exposed to agents (missing docs or types)."""


class SuiteError(MosaicError):
    """An external benchmark suite (AgentDojo, BFCL) is not installed, or was asked for a
    suite, task, item or attack it does not have. The message names the fix."""
