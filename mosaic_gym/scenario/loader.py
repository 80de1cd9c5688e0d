"""Load scenario files: YAML with line numbers, validation, family expansion.

Every problem becomes a :class:`~mosaic_gym.errors.ScenarioError` naming the
file, the line and the field. Loading never executes anything from the file: YAML is
parsed within size, depth, alias and node bounds (:mod:`~mosaic_gym.scenario.safe_yaml`),
and a file naming code (``python:`` predicates) loads only with ``trust_code=True``
(:mod:`~mosaic_gym.scenario.trust`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mosaic_gym.errors import ScenarioError
from mosaic_gym.scenario.locate import line_of as locate_line
from mosaic_gym.scenario.locate import validation_error
from mosaic_gym.scenario.resolve import resolve
from mosaic_gym.scenario.schema import OOD_DOMAINS, ScenarioSpec
from mosaic_gym.scenario.templating import TEMPLATE_CONTEXT
from mosaic_gym.scenario.variant import EpisodeSplit, ScenarioVariant

__all__ = ["EpisodeSplit", "ScenarioVariant", "expand", "iter_scenario_files", "load_file",
           "load_paths", "parse_yaml", "validate_spec"]

def parse_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """Parse YAML text into data and its node tree (for line numbers), within bounds."""
    from mosaic_gym.scenario.safe_yaml import load_bounded

    return load_bounded(text, source)


def validate_spec(data: Any, node: yaml.Node | None, source: str) -> ScenarioSpec:
    """Validate parsed data as a template :class:`ScenarioSpec`, mapping errors to lines.

    Fields holding ``{{ placeholders }}`` pass here (template mode); the loader's
    dry-run resolution validates them once they have values. Validation is strict (no
    text for a number, ``"20"`` for ``max_steps`` is refused), as the JSON Schema of
    ``mosaic scenarios schema`` says.
    """
    if not isinstance(data, dict):
        raise ScenarioError("a scenario file must be a YAML mapping", file=source, line=1)
    try:
        return ScenarioSpec.model_validate(data, context=TEMPLATE_CONTEXT, strict=True)
    except ValidationError as exc:
        raise validation_error(exc, node, source, prefix="") from None


def auto_split(variant_id: str, domain: str) -> EpisodeSplit:
    """ood for held-out domains; otherwise a stable 80/20 train/test hash split."""
    if domain in OOD_DOMAINS:
        return "ood"
    return "test" if zlib.crc32(variant_id.encode()) % 5 == 0 else "train"


def expand(spec: ScenarioSpec, data: dict[str, Any], source: str,
           trusted: bool = False) -> list[ScenarioVariant]:
    """The variants of one file: itself, or one per ``family`` entry."""

    def split_for(variant_id: str) -> EpisodeSplit:
        return auto_split(variant_id, spec.domain) if spec.split == "auto" else spec.split

    if not spec.family:
        return [ScenarioVariant(spec.id, spec, data, source, split_for(spec.id), trusted)]
    variants = []
    raw_family = data.get("family", [])
    for index, variant in enumerate(spec.family):
        raw = dict(data)
        raw.pop("family", None)
        raw_vars = dict(raw.get("variables") or {})
        raw_vars.update(raw_family[index].get("vars") or {})
        raw["variables"] = raw_vars
        raw["id"] = f"{spec.id}/{variant.name}"
        variant_spec = spec.model_copy(
            update={"id": raw["id"], "family": [], "variables": {**spec.variables, **variant.vars}}
        )
        variants.append(
            ScenarioVariant(raw["id"], variant_spec, raw, source, split_for(raw["id"]), trusted)
        )
    return variants


def load_file(path: str | Path, *, trust_code: bool = False) -> list[ScenarioVariant]:
    """Load, validate and expand one scenario file.

    Args:
        trust_code: allow ``python:`` predicates (code the file names) to run.

    Raises:
        ScenarioError: unreadable or oversized file, invalid or unbounded YAML,
            schema violations, unknown tools or attack strategies, code references
            without ``trust_code``, or a template that cannot be resolved (checked
            with a dry run).
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read file: {exc}", file=source) from None
    data, node = parse_yaml(text, source)
    spec = validate_spec(data, node, source)
    from mosaic_gym.scenario.trust import check_names, check_trust

    def line_of(loc: Sequence[int | str]) -> int | None:
        return locate_line(node, loc)

    check_trust(spec, source, line_of, trust_code=trust_code)
    check_names(spec, source, line_of)
    variants = expand(spec, data, source, trust_code)
    # Dry run: resolve every variant once so template mistakes surface at load time.
    for variant in variants:
        resolve(variant, seed=0, node=node)
    return variants


def iter_scenario_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories into their ``*.yaml``/``*.yml`` files, sorted."""
    files: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")))
        elif path.exists():
            files.append(path)
        else:
            raise ScenarioError("no such file or directory", file=str(path))
    return files


def load_paths(paths: Iterable[str | Path], *,
               trust_code: bool = False) -> list[ScenarioVariant]:
    """Load every scenario under ``paths``; ids must be unique across them."""
    variants: list[ScenarioVariant] = []
    seen: dict[str, str] = {}
    for file in iter_scenario_files(paths):
        for variant in load_file(file, trust_code=trust_code):
            if variant.id in seen:
                raise ScenarioError(
                    f"duplicate scenario id {variant.id!r} (also in {seen[variant.id]})",
                    file=str(file),
                    field="id",
                )
            seen[variant.id] = str(file)
            variants.append(variant)
    return variants
