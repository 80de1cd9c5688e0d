"""Template-aware validation for scenario models.

A scenario file is a template: any field may hold a ``{{ name }}`` placeholder
that only gets its value (a number, a path, an octal mode) when an episode is
resolved. Loading therefore validates in *template mode*, where a string that
contains a placeholder passes any field unchecked; the loader then resolves
every variant once (seed 0) and validates the result strictly, so type errors
behind placeholders still surface at load time, with file, line and field.

Why not a template engine (Jinja2): placeholders here are plain ``{{ name }}`` values put
into typed fields after parsing, never text spliced into raw YAML (where a payload holding
braces or quotes would corrupt the file). An engine would add expressions, filters and
escaping rules that authors do not need and that a scenario loader should not evaluate.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationInfo, field_validator

#: Validation context that switches template mode on.
TEMPLATE_CONTEXT = {"template": True}


def is_template(value: Any, info: ValidationInfo | None) -> bool:
    """True for a placeholder string while validating in template mode."""
    return (
        isinstance(value, str)
        and "{{" in value
        and info is not None
        and bool(info.context)
        and bool(info.context.get("template"))
    )


class TemplateModel(BaseModel):
    """Base for scenario models: placeholders pass in template mode."""

    @field_validator("*", mode="wrap")
    @classmethod
    def _template_passthrough(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        if is_template(value, info):
            return value
        return handler(value)
