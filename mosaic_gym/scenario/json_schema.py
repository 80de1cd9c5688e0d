"""The JSON Schema of scenario files, as ``mosaic scenarios schema`` prints it.

Pydantic's generated schema describes the models, not the files the loader accepts: it
knows nothing of template mode, of the shorthands that ``before`` validators expand, of
field names accepted beside their alias, or of the consistency rules checked after
validation. :func:`scenario_json_schema` starts from it and makes it tell the truth:

* a field that may hold a ``{{ placeholder }}`` (the question
  :func:`~mosaic_gym.scenario.templating.placeholder_allowed` answers for the loader too)
  also accepts any string containing ``{{``;
* field validators: a file's ``path`` is absolute;
* shorthands: a secret may be a bare value (``db_password: "literal"``), a solution a bare
  list of calls, a file ``mode`` an octal string such as ``"0600"``;
* a field with an alias may be given by its name instead (``sender`` for ``from``), never
  both;
* a predicate is a mapping with exactly its one key (``{refused: true}``, never ``{}``);
* the category rules of :class:`~mosaic_gym.scenario.schema.ScenarioSpec` (``harmful``
  expects ``refuse``, an ``injection`` scenario has an ``injection`` section, ...) and the
  reserved name ``injection``, as ``if``/``then`` and ``propertyNames``.

What a JSON Schema cannot state stays a *loader-only rule*: see :data:`LOADER_ONLY_RULES`
(listed in ``scenarios/README.md``); ``tests/scenario/test_json_schema.py`` checks that
loader and schema agree on the library and on a set of broken files.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from mosaic_gym.scenario.predicates import PREDICATE_MODELS
from mosaic_gym.scenario.schema import INJECTION_SLOT, FileSpecModel, ScenarioSpec, SolutionSpec
from mosaic_gym.scenario.templating import placeholder_allowed

#: The JSON Schema dialect of the export.
DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: Text that counts as a placeholder (the loader's test is ``"{{" in value``).
PLACEHOLDER = {"type": "string", "pattern": r"\{\{",
               "description": "A {{ name }} placeholder, filled when an episode is resolved."}

#: File paths: absolute, no NUL character.
ABSOLUTE_PATH = "^/[^\u0000]*$"

#: File modes: 0 to 0o7777 as a number, or octal text ("0600", "0o600").
MODE_TEXT = r"^\s*(0[oO])?0*[0-7]{1,4}\s*$"

#: Rules the loader enforces that the schema cannot state (each with where it is checked).
LOADER_ONLY_RULES: tuple[tuple[str, str], ...] = (
    ("YAML bounds: size, nesting, aliases, duplicate keys, .nan/.inf, long numbers",
     "mosaic_gym/scenario/safe_yaml.py"),
    ("a placeholder names a variable or secret defined earlier, and the value it gets "
     "fits the field (checked once filled, at seed 0 on load and at every seed played)",
     "mosaic_gym/scenario/resolve.py"),
    ("Faker providers come from the allow-list, with bounded arguments",
     "mosaic_gym/scenario/faker_policy.py"),
    ("names used both as a variable and as a secret", "ScenarioSpec._consistent"),
    ("family variant names are unique", "ScenarioSpec._consistent"),
    ("scenario ids are unique across the files loaded together",
     "mosaic_gym/scenario/loader.py"),
    ("tools and attack strategies exist", "mosaic_gym/scenario/trust.py"),
    ("python: predicates load only with --trust-code", "mosaic_gym/scenario/trust.py"),
    ("world ids are unique (file paths, mail ids, contacts, accounts, payees, vault "
     "sites, page URLs); mail ids sent-N are reserved", "mosaic_gym/scenario/crossref.py"),
    ("checks.protect and secret_leaked name existing secrets; trigger.after_tool, "
     "tool_called and solution calls name offered tools", "mosaic_gym/scenario/crossref.py"),
    ("the self-check's behavioural rules (solutions run without tool errors, checks do "
     "not hold in the initial world, canaries do not collide with the reference's "
     "traffic)", "mosaic_gym/selfcheck.py"),
)


def _models(root: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """Every model class reachable from ``root``'s fields."""
    seen: set[type[BaseModel]] = set()
    stack = [root]
    while stack:
        model = stack.pop()
        if model in seen:
            continue
        seen.add(model)
        yield model
        for field in model.model_fields.values():
            stack.extend(_model_types(field.annotation))


def _model_types(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in getattr(annotation, "__args__", ()) or ():
        yield from _model_types(argument)
    for extra in getattr(annotation, "__metadata__", ()) or ():
        yield from _model_types(extra)


def _accepts_any_string(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "string" and not {"pattern", "enum", "const", "format"} & set(
            schema):
        return True
    return any(_accepts_any_string(member) for member in schema.get("anyOf", ()))


def _with_placeholder(schema: dict[str, Any]) -> dict[str, Any]:
    if _accepts_any_string(schema):
        return schema
    keep: dict[str, Any] = {key: schema.pop(key) for key in ("title", "description", "default")
                            if key in schema}
    return {"anyOf": [schema, {"$ref": "#/$defs/Placeholder"}], **keep}


def _patch_model(model: type[BaseModel], definition: dict[str, Any]) -> None:
    """Placeholders and field names beside aliases, for one model's definition."""
    properties = definition.get("properties", {})
    required = definition.get("required", [])
    both_ways: list[tuple[str, str]] = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in properties:
            continue
        if placeholder_allowed(model, name):
            properties[key] = _with_placeholder(properties[key])
        if key != name and model.model_config.get("populate_by_name"):
            both_ways.append((key, name))
    for alias, name in both_ways:
        properties[name] = copy.deepcopy(properties[alias])
        conditions = definition.setdefault("allOf", [])
        if alias in required:
            required.remove(alias)
            conditions.append({"oneOf": [{"required": [alias]}, {"required": [name]}]})
        else:
            conditions.append({"not": {"required": [alias, name]}})
    if "required" in definition and not required:
        del definition["required"]


def _category_rules() -> list[dict[str, Any]]:
    """``ScenarioSpec._consistent`` in JSON Schema (what it can say of it)."""

    def when(condition: dict[str, Any], then: dict[str, Any]) -> dict[str, Any]:
        return {"if": condition, "then": then}

    category = {"required": ["category"]}
    needs_utility = {"required": ["checks"],
                     "properties": {"checks": {"required": ["utility"],
                                               "properties": {"utility": {"not": {
                                                   "type": "null"}}}}}}
    has_injection = {"required": ["injection"],
                     "properties": {"injection": {"not": {"type": "null"}}}}
    return [
        when({**category, "properties": {"category": {"const": "injection"}}}, has_injection),
        when({**category, "properties": {"category": {"const": "harmful"}}},
             {"properties": {"expected": {"const": "refuse"}},
              "required": ["checks", "unsafe_solution"],
              "allOf": [{"properties": {"checks": {"required": ["harm"], "properties": {
                  "harm": {"not": {"type": "null"}}}},
                  "unsafe_solution": {"not": {"type": "null"}}}}]}),
        when({**category, "properties": {"category": {"const": "benign"}}},
             {"properties": {"expected": {"const": "complete"}}}),
        when({"required": ["expected"], "properties": {"expected": {"const": "complete"}}},
             needs_utility),
        when(has_injection, {"required": ["checks"], "properties": {"checks": {
            "required": ["attack_success"],
            "properties": {"attack_success": {"not": {"type": "null"}}}}}}),
    ]


def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one scenario file, as the loader reads it."""
    schema = ScenarioSpec.model_json_schema(by_alias=True)
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    for model in _models(ScenarioSpec):
        definition = schema if model is ScenarioSpec else defs.get(model.__name__)
        if definition is not None:
            _patch_model(model, definition)
    defs["Placeholder"] = dict(PLACEHOLDER)
    # Shorthands expanded by `before` validators.
    secret = defs["SecretSpec"]
    defs["SecretSpec"] = {"anyOf": [secret, copy.deepcopy(secret["properties"]["value"])],
                          "description": secret.get("description", "")
                          + " Shorthand: the value alone."}
    solution = defs[SolutionSpec.__name__]
    defs[SolutionSpec.__name__] = {
        "anyOf": [solution, {"type": "array", "items": {"$ref": "#/$defs/ToolCallSpec"}}],
        "description": solution.get("description", "") + " Shorthand: the list of calls."}
    file_path = defs[FileSpecModel.__name__]["properties"]["path"]
    file_path["anyOf"] = [{"type": "string", "pattern": ABSOLUTE_PATH},
                          {"$ref": "#/$defs/Placeholder"}]
    file_path.pop("type", None)
    mode = defs[FileSpecModel.__name__]["properties"]["mode"]
    mode["anyOf"] = [{"type": "integer", "minimum": 0, "maximum": 0o7777},
                     {"type": "string", "pattern": MODE_TEXT},
                     {"$ref": "#/$defs/Placeholder"}]
    # A predicate is a mapping with exactly its one key.
    for key, model in PREDICATE_MODELS.items():
        defs[model.__name__]["required"] = [key]
    reserved = {"propertyNames": {"not": {"const": INJECTION_SLOT}}}
    schema["properties"]["variables"].update(reserved)
    schema["properties"]["secrets"].update(reserved)
    schema.setdefault("allOf", []).extend(_category_rules())
    schema["$schema"] = DIALECT
    schema["title"] = "mosaic-gym scenario file"
    schema["description"] = ("One scenario file. Rules the schema cannot state are checked "
                             "by the loader: see the 'Loader-only rules' of "
                             "scenarios/README.md.")
    return schema
