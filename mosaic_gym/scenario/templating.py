"""Template-aware validation for scenario models.

A scenario file is a template: a field whose type is text, a number or a boolean may
hold a ``{{ name }}`` placeholder that only gets its value (a number, a path, an octal
mode) when an episode is resolved. Loading therefore validates in *template mode*, where
a string that contains a placeholder passes such a field unchecked; the loader then
resolves every variant once (seed 0) and validates the result strictly, so type errors
behind placeholders still surface at load time, with file, line and field. Fields of a
list, mapping or model type never take a placeholder (one only yields a scalar), and
neither do the metadata fields a model lists in ``fixed_fields`` (a scenario's id,
category, domain, expected outcome and split, read before anything is resolved).

Why not a template engine (Jinja2): placeholders here are plain ``{{ name }}`` values put
into typed fields after parsing, never text spliced into raw YAML (where a payload holding
braces or quotes would corrupt the file). An engine would add expressions, filters and
escaping rules that authors do not need and that a scenario loader should not evaluate.
"""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import Any, ClassVar, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError, ValidationInfo, field_validator

#: Validation context that switches template mode on.
TEMPLATE_CONTEXT = {"template": True}
#: Validation context of a resolved scenario: a number a lone placeholder put into a
#: text field (``subject: "{{amount}}"``) becomes its text.
RESOLVED_CONTEXT = {"resolved": True}

_SCALARS = (str, int, float, bool)


def is_template(value: Any, info: ValidationInfo | None) -> bool:
    """True for a placeholder string while validating in template mode."""
    return (
        isinstance(value, str)
        and "{{" in value
        and info is not None
        and bool(info.context)
        and bool(info.context.get("template"))
    )


def accepts_scalar(annotation: Any) -> bool:
    """Can a value of this type be text, a number or a boolean?

    A placeholder only ever yields one of those (a lone ``{{ name }}`` keeps its value's
    type, anything else is text), so a field of a list, mapping or model type cannot be
    filled by one: template mode refuses a placeholder there straight away.
    """
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return accepts_scalar(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(accepts_scalar(member) for member in get_args(annotation))
    if origin is Literal:
        return True
    return annotation in _SCALARS or annotation is Any


@cache
def placeholder_allowed(model: type[BaseModel], field_name: str) -> bool:
    """May ``field_name`` of ``model`` hold a ``{{ placeholder }}`` in a scenario file?

    Yes when its type accepts a scalar and the model does not list it in
    ``fixed_fields`` (metadata read before any placeholder is filled, such as a
    scenario's id and category). The JSON Schema export asks the same question.
    """
    fixed: frozenset[str] = getattr(model, "fixed_fields", frozenset())
    field = model.model_fields.get(field_name)
    return field is not None and field_name not in fixed and accepts_scalar(field.annotation)


class TemplateModel(BaseModel):
    """Base for scenario models: placeholders pass in template mode.

    Subclasses may name fields that never take a placeholder in ``fixed_fields``.
    """

    fixed_fields: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="wrap")
    @classmethod
    def _template_passthrough(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        if is_template(value, info) and info.field_name is not None and placeholder_allowed(
                cls, info.field_name):
            return value
        context = info.context or {}
        if isinstance(value, (int, float)) and not isinstance(value, bool) and context.get(
                "resolved"):
            try:
                return handler(value)
            except ValidationError:
                return handler(str(value))
        return handler(value)
