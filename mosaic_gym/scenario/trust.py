"""A scenario file is data unless its caller trusts it; names it uses must exist.

``python: "module:function"`` predicates import a module and call a function: code
execution chosen by whoever wrote the file (``python: "sys:exit"`` ends the process, and
a module next to the file on ``sys.path`` runs as the user). They are the only code
reference a scenario may hold, so they load only when the caller opts in:
``trust_code=True`` on the environment (and :func:`~mosaic_gym.scenario.loader.load_file`),
``--trust-code`` on the CLI. Without it, loading stops with a ScenarioError naming the
file, the line and the flag. The judge checks the same flag again before importing
anything (:func:`mosaic_gym.judge.rules`), so a variant built by hand cannot bypass it.

The second check here makes name mistakes load errors instead of reset-time surprises:
every tool in ``tools`` and every attack strategy in ``injection.strategies`` must exist
(with the list of what does). Tool and strategy names are looked up lazily, since the
tool registry sits above the scenario layer; the lead may turn this into a registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from mosaic_gym.errors import ScenarioError
from mosaic_gym.scenario import predicates as p
from mosaic_gym.scenario.schema import ScenarioSpec

Loc = tuple[int | str, ...]
TRUST_FLAG = "trust_code=True (env kwarg) or --trust-code (CLI)"


def code_references(value: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """Every ``python:`` predicate below ``value``, with its location in the file."""
    stack: list[tuple[Any, Loc]] = [(value, loc)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, p.PythonCheck):
            yield (*where, "python"), item.python
        elif isinstance(item, BaseModel):
            for name in type(item).model_fields:
                field = type(item).model_fields[name]
                key = field.alias or name
                stack.append((getattr(item, name), (*where, key)))
        elif isinstance(item, (list, tuple)):
            stack.extend((child, (*where, index)) for index, child in enumerate(item))
        elif isinstance(item, dict):
            stack.extend((child, (*where, key)) for key, child in item.items())


def check_trust(spec: ScenarioSpec, source: str, line_of: Any, *, trust_code: bool) -> None:
    """Refuse code references unless ``trust_code``. Raises ScenarioError."""
    if trust_code:
        return
    for loc, dotted in code_references(spec):
        raise ScenarioError(
            f"`python: {dotted!r}` runs code named by the scenario file; it loads only "
            f"when you trust the file: pass {TRUST_FLAG}",
            file=source, line=line_of(loc), field=".".join(map(str, loc)),
        )


def check_names(spec: ScenarioSpec, source: str, line_of: Any) -> None:
    """Unknown tools and attack strategies, at load time. Raises ScenarioError."""
    from mosaic_gym.attacks import list_strategies
    from mosaic_gym.protocol.names import STANDARD_TOOLS

    for index, name in enumerate(spec.tools):
        if "{{" not in name and name not in STANDARD_TOOLS:
            raise ScenarioError(
                f"unknown tool {name!r}; available: {', '.join(STANDARD_TOOLS)}",
                file=source, line=line_of(("tools", index)), field=f"tools.{index}")
    injection = spec.injection
    if injection is None or injection.strategies == "all":
        return
    known = list_strategies()
    for index, name in enumerate(injection.strategies):
        if name not in known:
            raise ScenarioError(
                f"unknown attack strategy {name!r}; available: {', '.join(known)}",
                file=source, line=line_of(("injection", "strategies", index)),
                field=f"injection.strategies.{index}")
