"""Typed errors raised (or returned to the agent) by mosaic-gym: the one hierarchy.

The rule of thumb: an error in *input the user gave us* (a scenario file, a
config) raises; an error caused by *the agent's action* (bad tool arguments, a
hostile shell command) becomes a :class:`ToolError` that the environment turns
into an observation, never an exception out of ``env.step``.

Every error mosaic-gym raises on purpose is a :class:`MosaicError`::

    MosaicError
    ├── ScenarioError              a scenario file (file, line, field)
    ├── SandboxError               the sandbox infrastructure
    ├── ToolError                  an agent's call (returned as an observation)
    ├── ToolRegistrationError      a tool function that cannot be exposed
    ├── RunFileError               a run's output file (locked, foreign, corrupt)
    ├── CollectError               a rollout collection that cannot run
    ├── DependencyVersionError     an optional dependency of an untested version
    ├── RecipeError                a recipe file
    │   ├── PolicyRecipeError      (policies/*.yaml)
    │   └── TrainRecipeError       (trainers/*.yaml)
    └── ModelError                 a model policy
        ├── ModelLoadError, ChatTemplateError, VLLMNotInstalledError
        ├── VenvError, VllmServerError          (the vLLM virtual environment and server)
        └── OpenAIBackendError > ServerUnavailableError   (an OpenAI-compatible server)

Exceptions that never leave a module (the fake shell's control flow, a parser's internal
signal) are not part of it.
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


class RunFileError(MosaicError):
    """A run's output file cannot be used: another run holds it, it belongs to a different
    run, or it is corrupt (the message names the file and what to do)."""


class CollectError(MosaicError):
    """A rollout collection cannot run (e.g. ``--ray`` without Ray installed)."""


class DependencyVersionError(MosaicError):
    """An optional dependency is of a version whose private internals were not tested."""


class RecipeError(MosaicError):
    """A recipe file is missing, malformed or names something that cannot be used."""


class PolicyRecipeError(RecipeError):
    """A policy recipe (``policies/*.yaml``) is missing, malformed or unusable."""


class TrainRecipeError(RecipeError):
    """A training recipe (``trainers/*.yaml``) is malformed; the message names the file and
    the field."""


class ModelError(MosaicError):
    """A model policy cannot be built or cannot answer."""


class ModelLoadError(ModelError):
    """A model or tokenizer could not be loaded."""


class ChatTemplateError(ModelError):
    """A chat template is missing, unreadable, or fails on the environment's messages."""


class VLLMNotInstalledError(ModelError, ImportError):
    """vLLM is not importable in this environment."""


class VenvError(ModelError, RuntimeError):
    """The vLLM virtual environment could not be created."""


class VllmServerError(ModelError, RuntimeError):
    """``vllm serve`` did not come up (the message carries the end of its log)."""


class OpenAIBackendError(ModelError):
    """An OpenAI-compatible server answered with an error that retrying will not fix."""


class ServerUnavailableError(OpenAIBackendError):
    """No answer from the server after every retry."""


class RunError(MosaicError):
    """A run folder (``metrics.json`` + ``trajectories.jsonl``) is missing or unreadable."""


class MissingExtraError(MosaicError):
    """A command needs an optional extra that is not installed.

    The message ends with the exact ``pip install 'mosaic-gym[extra]'`` line.
    """

    def __init__(self, extra: str, module: str, purpose: str) -> None:
        self.extra = extra
        self.module = module
        super().__init__(f"{purpose} needs the '{extra}' extra ({module} is not installed): "
                         f"pip install 'mosaic-gym[{extra}]'")


class UsageError(MosaicError):
    """A command was given a bad value (a flag, an id, a path); said before any work starts."""


class SuiteError(MosaicError):
    """An external benchmark suite (AgentDojo, BFCL) is not installed, or was asked for a
    suite, task, item or attack it does not have. The message names the fix."""
