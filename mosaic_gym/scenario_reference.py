"""``mosaic scenarios reference``: the scenario author's reference, generated from the code.

Everything an author needs to look up while writing a file, taken from where it is defined
so that it cannot drift: the tools with their argument names and types (the tool registry),
the event kinds and the target forms that ``checks.allowed_effects`` globs match (read from
the ``Event(...)`` calls in ``mosaic_gym/world/*.py``), the fake shell's commands, the
predicates, the Faker allow-list, the attack strategies and the domains.
``docs/scenario-reference.md`` is this module's output; a test keeps it up to date
(regenerate with ``mosaic scenarios reference --out docs/scenario-reference.md``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

WORLD_DIR = Path(__file__).resolve().parent / "world"
#: Readable names for the code's variable names inside event targets.
_NAMES = {"n": "contact name, lower-case", "rcpt": "recipient address", "to_account":
          "destination account or payee", "host": "host name", "site": "vault site",
          "email_id": "mail id"}
_COMBINATORS = {"all": "every one holds", "any": "at least one holds", "not": "it does not hold"}


def event_targets(folder: Path = WORLD_DIR) -> list[tuple[str, str, str, str]]:
    """(kind, target form, effect, module) of every ``Event(...)`` built in ``folder``.

    A target written as an f-string keeps its literal prefix and names the value by its
    expression (``mail:<rcpt>``); a target held in a variable is a file path.
    """
    found: dict[tuple[str, str], tuple[str, str, str, str]] = {}
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Event"
                    and len(node.args) >= 3):
                continue
            kind, target, effect = node.args[:3]
            effects = _constants(effect)
            if not (isinstance(kind, ast.Constant) and effects):
                continue
            form = _target_form(target)
            found[(str(kind.value), form)] = (str(kind.value), form, " or ".join(effects),
                                               path.stem)
    return sorted(found.values(), key=lambda row: (row[3], row[0]))


def _constants(node: ast.expr) -> list[str]:
    """The values an effect argument can take: a constant, or the constant branches of a
    conditional (``"write" if own else "irreversible"``); [] for anything else."""
    if isinstance(node, ast.Constant):
        return [str(node.value)]
    if isinstance(node, ast.IfExp):
        branches = _constants(node.body) + _constants(node.orelse)
        return sorted(set(branches)) if len(branches) >= 2 else []
    return []


def _target_form(node: ast.expr) -> str:
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                name = ast.unparse(value.value).split(".")[-1]
                parts.append(f"<{_NAMES.get(name, name)}>")
        return "".join(parts)
    if isinstance(node, ast.Constant):
        return str(node.value)
    return "<absolute file path>"


def _type_name(schema: dict[str, Any]) -> str:
    if schema.get("type") == "array":
        return f"list of {_type_name(schema.get('items', {}))}"
    return str(schema.get("type", "any"))


def _tool_rows() -> Iterator[str]:
    from mosaic_gym.tools import standard_tools

    for tool in standard_tools().values():
        props = tool.parameters.get("properties", {})
        args = []
        for name, prop in props.items():
            note = "required" if name in tool.required else f"default {prop.get('default')!r}"
            args.append(f"`{name}` ({_type_name(prop)}, {note}): {prop.get('description', '')}")
        described = "<br>".join(args) or "none"
        yield f"| `{tool.name}` | {tool.effect} | {tool.description} | {described} |"


def _predicate_rows() -> Iterator[str]:
    from pydantic import BaseModel

    from mosaic_gym.scenario.predicates import PREDICATE_MODELS

    for key, model in PREDICATE_MODELS.items():
        field = next(iter(model.model_fields.values()))
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names = [f.alias or n for n, f in annotation.model_fields.items()]
            form = "{" + ", ".join(names) + "}"
        elif key in ("all", "any"):
            form = "[predicate, ...]"
        elif key == "not":
            form = "predicate"
        else:
            form = getattr(annotation, "__name__", None) or str(annotation).replace(
                "typing.", "")
        inner = annotation.__doc__ if isinstance(annotation, type) and issubclass(
            annotation, BaseModel) else None
        description = (_COMBINATORS.get(key) or field.description or inner or model.__doc__
                       or "").strip().splitlines()
        form = form.replace("|", "\\|")
        yield f"| `{key}` | `{form}` | {description[0] if description else ''} |"


def render() -> str:
    """The reference as Markdown."""
    from mosaic_gym.attacks import list_strategies
    from mosaic_gym.sandbox.fake.shell import supported_commands
    from mosaic_gym.scenario.faker_policy import PROVIDERS
    from mosaic_gym.scenario.json_schema import LOADER_ONLY_RULES
    from mosaic_gym.scenario.schema import DOMAIN_PATTERN, DOMAINS, OOD_DOMAINS

    lines = [
        "# Scenario file reference",
        "",
        "<!-- Generated by `mosaic scenarios reference --out docs/scenario-reference.md`; "
        "do not edit by hand (tests/scenario/test_reference_doc.py checks it). -->",
        "",
        "How to write a scenario: `scenarios/README.md`. This page lists what the code "
        "defines.",
        "",
        "## Tools",
        "",
        "Name them in `tools:`; solution calls use these argument names. The class is the "
        "worst one call may do.",
        "",
        "| tool | class | what it does | arguments |",
        "|---|---|---|---|",
        *_tool_rows(),
        "",
        "## Event targets (for `checks.allowed_effects` and `event` predicates)",
        "",
        "Every state change the world records is an event with a kind and a target. "
        "`allowed_effects` globs match targets of `irreversible` events; the `event` "
        "predicate matches any (`{kind: mail_sent, target: \"mail:*@acme.example\"}`).",
        "",
        "| kind | target | effect | recorded by |",
        "|---|---|---|---|",
        *[f"| `{kind}` | `{form}` | {effect} | `world/{module}.py` |"
          for kind, form, effect, module in event_targets()],
        "",
        "## Fake shell commands",
        "",
        "`run_shell` on the fake backend runs a POSIX `sh` subset (pipes, redirections, "
        "`&&`, `||`, `;`, quoting, globs, variables) with these commands; anything else is "
        "an \"unsupported command\" error. The docker backend runs a real busybox `sh`.",
        "",
        " ".join(f"`{name}`" for name in supported_commands()),
        "",
        "## Predicates",
        "",
        "| key | value | meaning |",
        "|---|---|---|",
        *_predicate_rows(),
        "",
        "## Faker providers",
        "",
        "`{faker: NAME, args: {...}}` may call these, with these arguments (placeholders "
        "in `args` are filled from names defined above):",
        "",
        *[f"* `{name}`" + (f" ({', '.join(f'`{a}`' for a in args)})" if args else "")
          for name, args in sorted(PROVIDERS.items())],
        "",
        "## Attack strategies",
        "",
        "`injection.strategies: all` or a list of: "
        + ", ".join(f"`{name}`" for name in list_strategies()) + ".",
        "",
        "## Domains",
        "",
        f"Any name matching `{DOMAIN_PATTERN}` is a domain. The library uses "
        + ", ".join(f"`{d}`" for d in DOMAINS) + "; the `ood` split holds out "
        + ", ".join(f"`{d}`" for d in OOD_DOMAINS) + ".",
        "",
        "## Loader-only rules",
        "",
        "The JSON Schema (`mosaic scenarios schema`) cannot state these; the loader or the "
        "self-check does:",
        "",
        *[f"* {rule} (`{where}`)" for rule, where in LOADER_ONLY_RULES],
        "",
    ]
    return "\n".join(lines)
