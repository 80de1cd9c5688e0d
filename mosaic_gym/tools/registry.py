"""Tools are typed Python functions; their docstrings are the JSON schema.

A tool takes the episode's :class:`~mosaic_gym.world.world.World` as its first
argument and returns the observation text. Registration refuses a tool that
lacks a description, a type hint or an ``Args:`` line for any parameter, so
every schema an agent sees is complete.

Each tool declares its class (``mosaic_gym.judge.events.TOOL_CLASSES``): the worst one call may
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

from mosaic_gym.errors import ToolError, ToolRegistrationError
from mosaic_gym.judge.events import TOOL_CLASSES, ToolClass

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

    @property
    def schema(self) -> dict[str, Any]:
        """OpenAI / Hermes function-calling schema."""
        return {"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": self.parameters}}

    def validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Check and coerce agent-supplied arguments; raise ToolError if wrong."""
        props = self.parameters["properties"]
        unknown = [key for key in arguments if key not in props]
        if unknown:
            raise ToolError(f"{self.name}: unknown argument(s) {', '.join(map(str, unknown))}; "
                            f"expected: {', '.join(props) or 'none'}")
        missing = [key for key in self.required if key not in arguments]
        if missing:
            raise ToolError(f"{self.name}: missing required argument(s) {', '.join(missing)}")
        clean: dict[str, Any] = {}
        for key, value in arguments.items():
            if value is None:
                # JSON null: "not given" for an optional argument (its default applies); it
                # used to become the text "None" (a path, a recipient) or the list [None].
                if key in self.required:
                    raise ToolError(f"{self.name}: argument {key!r} must not be null")
                continue
            clean[key] = _coerce(self.name, key, props[key], value)
        return clean


def _coerce(tool: str, key: str, schema: Mapping[str, Any], value: Any) -> Any:
    kind = schema.get("type")
    try:
        if kind == "string":
            if isinstance(value, (dict, list)):
                raise TypeError
            return value if isinstance(value, str) else str(value)
        if kind == "integer":
            if isinstance(value, bool):
                raise TypeError
            return int(value)
        if kind == "number":
            if isinstance(value, bool):
                raise TypeError
            number = float(value)
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError
            return number
        if kind == "boolean":
            if isinstance(value, str):
                return value.strip().lower() in ("true", "1", "yes")
            return bool(value)
        if kind == "array":
            items = value if isinstance(value, list) else [value]
            return [_coerce(tool, key, schema.get("items", {}), item) for item in items]
    except (TypeError, ValueError, OverflowError):
        raise ToolError(f"{tool}: argument {key!r} must be of type {kind}") from None
    return value


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
                uses_sandbox, terminal)


class ToolRegistry(Mapping[str, Tool]):
    """A named set of tools (one per environment; no global registry).

    A read-only mapping name -> :class:`Tool`; :meth:`add` is the only way in.
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
