"""Where in a scenario file a problem is: YAML lines and field paths for error messages."""

from __future__ import annotations

from collections.abc import Sequence

import yaml
from pydantic import ValidationError

from mosaic_gym.errors import ScenarioError


def line_of(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (or of its nearest parent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if getattr(key_node, "value", None) == part or (
                    part == "not_" and getattr(key_node, "value", None) == "not"
                ):
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
        else:
            # Union members appear in pydantic locations as tag names: skip them.
            continue
        line = node.start_mark.line + 1
    return line


def field_name(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc)


def validation_error(
    exc: ValidationError, node: yaml.Node | None, source: str, *, prefix: str
) -> ScenarioError:
    """The first pydantic error of ``exc`` as a ScenarioError with file, line and field."""
    first = exc.errors()[0]
    loc = [part for part in first["loc"] if not _is_union_tag(part)]
    return ScenarioError(
        prefix + first["msg"] + _more(exc),
        file=source,
        line=line_of(node, loc),
        field=field_name(loc) or None,
    )


def _is_union_tag(part: int | str) -> bool:
    return isinstance(part, str) and (
        part.startswith(("tagged-union", "function-")) or part[:1].isupper()
        or part in ("str", "int", "float", "bool", "list[...]", "list[str]")
    )


def _more(exc: ValidationError) -> str:
    count = exc.error_count()
    return f" (and {count - 1} more error{'s' if count > 2 else ''})" if count > 1 else ""
