"""Turn a scenario variant into one concrete episode world under a seed.

Placeholders ``{{ name }}`` in string fields are replaced in a single pass over
*parsed* values: substituted text is never scanned again, so attacker payloads
and Faker values containing braces, quotes or YAML syntax survive byte for byte.
The reserved placeholder ``{{ injection }}`` becomes :data:`INJECTION_MARKER`,
which the world replaces with the attack payload (or nothing) when it is built.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from mosaic_gym.errors import ScenarioError
from mosaic_gym.scenario.crossref import check_resolved
from mosaic_gym.scenario.faker_policy import check_call, check_result
from mosaic_gym.scenario.locate import field_name, line_of, validation_error
from mosaic_gym.scenario.schema import (
    INJECTION_SLOT,
    ChoiceValue,
    FakerValue,
    ScenarioSpec,
    SecretSpec,
    ValueSpec,
)
from mosaic_gym.scenario.secret_kinds import canary_problem, infer_kind
from mosaic_gym.scenario.templating import RESOLVED_CONTEXT
from mosaic_gym.scenario.variant import ScenarioVariant

#: Stands for the attack payload inside resolved world content. Private-use
#: code points, so no scenario text or Faker value can contain it by accident.
INJECTION_MARKER = "\ue000mosaic-injection\ue001"

#: Characters one string value may reach after its placeholders are filled.
MAX_VALUE_CHARS = 1024 * 1024
#: Characters all placeholder substitutions of one resolution may produce.
MAX_RESOLVED_CHARS = 8 * 1024 * 1024

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

# Fields that hold templates for *later* (solutions reference secrets; that is
# fine) are resolved like the rest; nothing is exempt.


@dataclass(frozen=True)
class ResolvedScenario:
    """A variant with every placeholder filled for one seed."""

    variant: ScenarioVariant
    seed: int
    spec: ScenarioSpec
    values: Mapping[str, Any]
    secrets: Mapping[str, str]
    secret_specs: Mapping[str, SecretSpec]

    @property
    def id(self) -> str:
        return self.variant.id

    @property
    def protected_secrets(self) -> dict[str, str]:
        protect = self.spec.checks.protect
        if protect == "all":
            return dict(self.secrets)
        return {name: self.secrets[name] for name in protect if name in self.secrets}


def episode_seed(variant_id: str, seed: int) -> int:
    """Mix the episode seed with the variant id (stable across processes)."""
    return (zlib.crc32(variant_id.encode()) * 1_000_003 + seed) % (2**32)


class _Resolver:
    def __init__(self, variant: ScenarioVariant, seed: int, faker: Any, node: Any) -> None:
        self.variant = variant
        self.node = node
        self.mixed = episode_seed(variant.id, seed)
        self.rng = random.Random(self.mixed)
        self.faker = faker
        self.values: dict[str, Any] = {INJECTION_SLOT: INJECTION_MARKER}
        self.expanded = 0

    def error(self, message: str, loc: tuple[int | str, ...]) -> ScenarioError:
        return ScenarioError(
            message,
            file=self.variant.source,
            line=line_of(self.node, loc) if self.node is not None else None,
            field=field_name(loc),
        )

    def value(self, spec: ValueSpec, loc: tuple[int | str, ...]) -> Any:
        if isinstance(spec, FakerValue):
            return self.faker_value(spec, loc)
        if isinstance(spec, ChoiceValue):
            return self.substitute(self.rng.choice(spec.choice), loc)
        return self.substitute(spec, loc)

    def faker_value(self, spec: FakerValue, loc: tuple[int | str, ...]) -> Any:
        """Call one Faker provider; placeholders in its name, ``args``, prefix and suffix
        are filled first (from the names defined above this one)."""
        name = self.substitute(spec.faker, (*loc, "faker"))
        if not isinstance(name, str):
            raise self.error(f"the Faker provider name must be text, got {name!r}",
                             (*loc, "faker"))
        args = {key: self.substitute(item, (*loc, "args", key))
                for key, item in spec.args.items()}
        # Only allow-listed providers with bounded arguments: getattr alone reaches
        # add_provider and friends, which rewire the Faker every scenario shares.
        refused = check_call(name, args)
        if refused is not None:
            raise self.error(refused, loc)
        faker = self.get_faker()
        provider = getattr(faker, name, None)
        if provider is None or not callable(provider):
            raise self.error(f"unknown Faker provider {name!r}", loc)
        try:
            produced = provider(**args)
        except Exception as exc:  # Faker raises many types for bad arguments
            raise self.error(f"Faker provider {name!r} failed: {exc}", loc) from None
        too_long = check_result(name, produced)
        if too_long is not None:
            raise self.error(too_long, loc)
        prefix = self.substitute(spec.prefix, (*loc, "prefix"))
        suffix = self.substitute(spec.suffix, (*loc, "suffix"))
        if prefix or suffix:
            return f"{prefix}{produced}{suffix}"
        return produced

    def charge(self, size: int, loc: tuple[int | str, ...]) -> None:
        """Count characters produced by placeholders over the whole resolution."""
        self.expanded += size
        if self.expanded > MAX_RESOLVED_CHARS:
            raise self.error(f"placeholders expand to more than {MAX_RESOLVED_CHARS} "
                             f"characters in this scenario", loc)

    def get_faker(self) -> Any:
        if self.faker is None:
            from faker import Faker

            self.faker = Faker("en_US")
        self.faker.seed_instance(self.mixed)
        # Re-seed once per resolution only: subsequent draws continue the stream.
        self.get_faker = lambda: self.faker  # type: ignore[method-assign]
        return self.faker

    def substitute(self, value: Any, loc: tuple[int | str, ...]) -> Any:
        if isinstance(value, str):
            if "{{" not in value:
                return value
            whole = _PLACEHOLDER.fullmatch(value.strip())
            if whole is not None:
                # A lone placeholder keeps its value's type (numbers stay
                # numbers); anything else a provider returns (dates, decimals)
                # becomes text.
                found = self.lookup(whole.group(1), loc)
                return found if isinstance(found, (str, int, float, bool)) else str(found)

            produced = [len(value)]

            def replace(match: re.Match[str]) -> str:
                text = str(self.lookup(match.group(1), loc))
                # Counted while substituting: 27 doubling lines would be 2 GB.
                produced[0] += len(text)
                self.charge(len(text), loc)
                if produced[0] > MAX_VALUE_CHARS:
                    raise self.error(f"placeholders expand to more than {MAX_VALUE_CHARS} "
                                     f"characters in one value", loc)
                return text

            return _PLACEHOLDER.sub(replace, value)
        if isinstance(value, dict):
            return {key: self.substitute(item, (*loc, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [self.substitute(item, (*loc, index)) for index, item in enumerate(value)]
        return value

    def lookup(self, name: str, loc: tuple[int | str, ...]) -> Any:
        try:
            return self.values[name]
        except KeyError:
            known = ", ".join(sorted(k for k in self.values if k != INJECTION_SLOT)) or "none"
            raise self.error(
                f"unknown placeholder {{{{{name}}}}} (defined here: {known})", loc
            ) from None


def resolve(
    variant: ScenarioVariant, seed: int, *, faker: Any = None, node: Any = None
) -> ResolvedScenario:
    """Resolve ``variant`` for ``seed``.

    Args:
        variant: the scenario variant.
        seed: the episode seed; the same seed gives the same world.
        faker: a ``faker.Faker`` instance to reuse (created when ``None``).
        node: the YAML node tree, only to put line numbers in errors.

    Raises:
        ScenarioError: a placeholder names nothing, a Faker provider is unknown,
            or the resolved values break the schema.
    """
    resolver = _Resolver(variant, seed, faker, node)
    spec = variant.spec
    raw_vars = variant.raw.get("variables") or {}
    for name, value_spec in spec.variables.items():
        resolver.values[name] = resolver.value(value_spec, ("variables", name))
        if name not in raw_vars:  # family-only variable: keep its loc honest
            continue
    secrets: dict[str, str] = {}
    for name, secret in spec.secrets.items():
        produced = resolver.value(secret.value, ("secrets", name))
        secrets[name] = str(produced)
        resolver.values[name] = secrets[name]
        kind = secret.kind or infer_kind(secrets[name])
        problem = canary_problem(secrets[name], kind)
        if problem is not None:  # a canary the judge cannot tell from honest traffic
            raise resolver.error(problem, ("secrets", name))
    data = {
        key: resolver.substitute(item, (key,))
        for key, item in variant.raw.items()
        if key not in ("variables", "secrets", "family")
    }
    data["id"] = variant.id
    try:
        resolved_spec = ScenarioSpec.model_validate(data, context=RESOLVED_CONTEXT)
    except ValidationError as exc:
        raise validation_error(
            exc, node, variant.source, prefix="after filling placeholders: "
        ) from None
    # Secret policies may name destinations through placeholders too.
    secret_specs = {
        name: SecretSpec(
            value=secrets[name],
            allowed_destinations=[
                str(resolver.substitute(dest, ("secrets", name, "allowed_destinations", index)))
                for index, dest in enumerate(secret.allowed_destinations)
            ],
            description=secret.description,
            kind=secret.kind or infer_kind(secrets[name]),
            min_length=secret.min_length,
        )
        for name, secret in spec.secrets.items()
    }
    check_resolved(resolved_spec, set(spec.secrets), resolver.error)
    values = {k: v for k, v in resolver.values.items() if k != INJECTION_SLOT}
    return ResolvedScenario(variant, seed, resolved_spec, values, secrets, secret_specs)


def dump_yaml(data: Any) -> str:
    """YAML text of ``data`` (for messages and docs)."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
