"""Tools are typed Python functions; their docstrings are the JSON schema.

A tool takes the episode's :class:`~mosaic_gym.world.world.World` as its first
argument and returns the observation text. Registration refuses a tool that
lacks a description, a type hint or an ``Args:`` line for any parameter, so
every schema an agent sees is complete.

Each tool declares its class (``mosaic_gym.core.events.TOOL_CLASSES``): the worst one call may
do, checked against observed events by ``mosaic_gym.testing.invariants``. A
:class:`ToolRegistry` is a read-only mapping from names to tools: ``in``, ``[name]``, ``len``
and iteration all speak names (``for name in registry``; ``registry.values()`` for tools).
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from mosaic_gym.core.events import TOOL_CLASSES, ToolClass
from mosaic_gym.errors import ToolError, ToolRegistrationError

_JSON_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_ARG_LINE = re.compile(r"^\s+(\w+)(?:\s*\([^)]*\))?:\s*(.+)$")
_SECTIONS = ("Returns", "Raises", "Examples", "Example", "Note", "Notes", "Yields")


@dataclass(frozen=True)
class Tool:
    name: str
    function: Callable[..., str]
    effect: ToolClass
    description: str
    parameters: Mapping[str, Any]  # JSON schema of the arguments object
    required: tuple[str, ...]
    #: Does it touch the sandbox's files (so a snapshot is needed after it)?
    uses_sandbox: bool = False
    terminal: bool = False
    #: The pydantic model that validates a call's arguments (built from the signature).
    arguments_model: type[BaseModel] = BaseModel

    @property
    def schema(self) -> dict[str, Any]:
        """OpenAI / Hermes function-calling schema."""
        return {"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": self.parameters}}

    def validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Check and coerce agent-supplied arguments with the tool's pydantic model.

        A JSON ``null`` means "not given": an optional argument keeps its default, a required
        one is refused. Raises ``ToolError`` naming the tool and each bad argument (unknown,
        missing, null, or of the wrong type), so the agent can correct its call.
        """
        given = {key: value for key, value in arguments.items() if value is not None}
        nulls = [key for key in arguments if arguments[key] is None and key in self.required]
        if nulls:
            raise ToolError(f"{self.name}: argument(s) {', '.join(map(repr, nulls))} must "
                            "not be null")
        try:
            model = self.arguments_model.model_validate(given)
        except ValidationError as exc:
            raise ToolError(_describe(self, exc)) from None
        return {key: getattr(model, key) for key in given}


def _describe(item: Tool, exc: ValidationError) -> str:
    """One agent-readable sentence per problem of a call's arguments."""
    props = item.parameters["properties"]
    errors = exc.errors()
    unknown = [str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden"]
    missing = [str(e["loc"][0]) for e in errors if e["type"] == "missing"]
    parts = []
    if unknown:
        parts.append(f"unknown argument(s) {', '.join(unknown)}; expected: "
                     f"{', '.join(props) or 'none'}")
    if missing:
        parts.append(f"missing required argument(s) {', '.join(missing)}")
    for error in errors:
        if error["type"] in ("extra_forbidden", "missing") or not error["loc"]:
            continue
        key = str(error["loc"][0])
        kind = props.get(key, {}).get("type", "the declared type")
        parts.append(f"argument {key!r} must be of type {kind}")
    return f"{item.name}: " + "; ".join(dict.fromkeys(parts))


def _arguments_model(name: str, params: list[inspect.Parameter],
                     hints: Mapping[str, Any]) -> type[BaseModel]:
    """A pydantic model of a tool's arguments, built from its signature.

    Lax coercion, as an agent writing JSON needs it ("12.5" for a number, 3 for a string),
    never silent loss: NaN and infinities are refused, and so are unknown arguments.
    """
    fields: dict[str, Any] = {}
    for param in params:
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (hints[param.name], default)
    config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, allow_inf_nan=False)
    model: type[BaseModel] = create_model(f"{name}_arguments", __config__=config, **fields)
    return model


def _json_type(annotation: Any) -> dict[str, Any]:
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _json_type(members[0])
    if origin in (list, tuple) or annotation in (list, tuple):
        args = get_args(annotation)
        return {"type": "array", "items": _json_type(args[0]) if args else {"type": "string"}}
    if annotation in _JSON_TYPES:
        return {"type": _JSON_TYPES[annotation]}
    raise ToolRegistrationError(f"unsupported parameter type {annotation!r}")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Google-style docstring: summary paragraph(s) and an ``Args:`` section."""
    summary: list[str] = []
    args: dict[str, str] = {}
    section = "summary"
    current: str | None = None
    arg_indent: int | None = None
    for line in inspect.cleandoc(doc).splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if indent == 0 and stripped in ("Args:", "Arguments:", "Parameters:"):
            section = "args"
            continue
        if indent == 0 and stripped.endswith(":") and stripped[:-1] in _SECTIONS:
            section = "other"
            continue
        if section == "summary":
            summary.append(stripped)
        elif section == "args" and stripped:
            match = _ARG_LINE.match(line)
            if match and (arg_indent is None or indent == arg_indent):
                arg_indent = indent
                current = match.group(1)
                args[current] = match.group(2).strip()
            elif current:
                args[current] += " " + stripped
    return " ".join(part for part in summary if part).strip(), args


def make_tool(function: Callable[..., str], *, effect: ToolClass, name: str | None = None,
              uses_sandbox: bool = False, terminal: bool = False) -> Tool:
    """Build a :class:`Tool` from a typed, documented function.

    ``effect`` is the tool's declared class, the worst one call may do. ``"terminal"`` (or
    ``terminal=True``, kept for older code, with ``"read"``) makes a tool that ends the episode.

    Raises:
        ToolRegistrationError: unknown class, a terminal tool declared to change state, no
            docstring, a parameter with no type hint or no description.
    """
    tool_name = name or function.__name__
    if effect not in TOOL_CLASSES:
        raise ToolRegistrationError(f"{tool_name}: effect must be one of {TOOL_CLASSES}")
    if terminal and effect not in ("read", "terminal"):
        raise ToolRegistrationError(f"{tool_name}: a terminal tool must change nothing "
                                    f"(class 'terminal'), not {effect!r}")
    if terminal or effect == "terminal":
        effect, terminal = "terminal", True
    if not function.__doc__:
        raise ToolRegistrationError(f"{tool_name}: a tool needs a docstring")
    description, arg_docs = _parse_docstring(function.__doc__)
    if not description:
        raise ToolRegistrationError(f"{tool_name}: the docstring needs a summary line")
    hints = typing.get_type_hints(function)
    params = list(inspect.signature(function).parameters.values())[1:]  # skip the world
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in params:
        if param.name not in hints:
            raise ToolRegistrationError(f"{tool_name}: parameter {param.name!r} has no type hint")
        if not arg_docs.get(param.name):
            raise ToolRegistrationError(
                f"{tool_name}: parameter {param.name!r} has no description in 'Args:'")
        prop = _json_type(hints[param.name])
        prop["description"] = arg_docs[param.name]
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
        else:
            prop["default"] = param.default
        properties[param.name] = prop
    parameters = {"type": "object", "properties": properties, "required": required}
    return Tool(tool_name, function, effect, description, parameters, tuple(required),
                uses_sandbox, terminal, _arguments_model(tool_name, params, hints))


class ToolRegistry(Mapping[str, Tool]):
    """A named set of tools (one per environment; no global registry).

    A read-only mapping from tool name to :class:`Tool`, in registration order: iterating
    gives the names (``for name in registry``), ``registry[name]`` the tool and
    ``registry.values()`` the tools, as for any ``Mapping``.
    """

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.add(item)

    def add(self, item: Tool) -> None:
        if item.name in self._tools:
            raise ToolRegistrationError(f"tool {item.name!r} registered twice")
        self._tools[item.name] = item

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    def get(self, name: str, default: Tool | None = None) -> Tool | None:  # type: ignore[override]
        return self._tools.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[str]:
        return iter(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return list(self._tools)

    def subset(self, names: Iterable[str]) -> ToolRegistry:
        return ToolRegistry(self._tools[name] for name in names)

    def schemas(self) -> list[dict[str, Any]]:
        return [item.schema for item in self._tools.values()]


def tool(effect: ToolClass, *, uses_sandbox: bool = False, terminal: bool = False,
         name: str | None = None) -> Callable[[Callable[..., str]], Tool]:
    """Decorator form of :func:`make_tool`."""

    def wrap(function: Callable[..., str]) -> Tool:
        return make_tool(function, effect=effect, name=name, uses_sandbox=uses_sandbox,
                         terminal=terminal)

    return wrap
