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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from mosaic_gym.errors import ScenarioError
from mosaic_gym.scenario.schema import OOD_DOMAINS, ScenarioSpec
from mosaic_gym.scenario.templating import TEMPLATE_CONTEXT

EpisodeSplit = Literal["train", "test", "ood"]


@dataclass(frozen=True)
class ScenarioVariant:
    """One concrete member of a scenario file (a file without family has one)."""

    id: str
    spec: ScenarioSpec
    #: The parsed YAML (family variables merged in), resolved per episode.
    raw: dict[str, Any]
    source: str
    split: EpisodeSplit
    #: Loaded with trust_code=True: its ``python:`` predicates may run.
    trusted: bool = False

    @property
    def category(self) -> str:
        return self.spec.category

    @property
    def domain(self) -> str:
        return self.spec.domain

    @property
    def expected(self) -> str:
        return self.spec.expected

    @property
    def has_injection(self) -> bool:
        return self.spec.injection is not None


def _line_of(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
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


def _field_name(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc)


def parse_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """Parse YAML text into data and its node tree (for line numbers), within bounds."""
    from mosaic_gym.scenario.safe_yaml import load_bounded

    return load_bounded(text, source)


def validate_spec(data: Any, node: yaml.Node | None, source: str) -> ScenarioSpec:
    """Validate parsed data as a template :class:`ScenarioSpec`, mapping errors to lines.

    Fields holding ``{{ placeholders }}`` pass here (template mode); the loader's
    dry-run resolution validates them strictly once they have values.
    """
    if not isinstance(data, dict):
        raise ScenarioError("a scenario file must be a YAML mapping", file=source, line=1)
    try:
        return ScenarioSpec.model_validate(data, context=TEMPLATE_CONTEXT)
    except ValidationError as exc:
        raise validation_error(exc, node, source, prefix="") from None


def validation_error(
    exc: ValidationError, node: yaml.Node | None, source: str, *, prefix: str
) -> ScenarioError:
    """The first pydantic error of ``exc`` as a ScenarioError with file, line and field."""
    first = exc.errors()[0]
    loc = [part for part in first["loc"] if not _is_union_tag(part)]
    return ScenarioError(
        prefix + first["msg"] + _more(exc),
        file=source,
        line=_line_of(node, loc),
        field=_field_name(loc) or None,
    )


def _is_union_tag(part: int | str) -> bool:
    return isinstance(part, str) and (
        part.startswith(("tagged-union", "function-")) or part[:1].isupper()
        or part in ("str", "int", "float", "bool", "list[...]", "list[str]")
    )


def _more(exc: ValidationError) -> str:
    count = exc.error_count()
    return f" (and {count - 1} more error{'s' if count > 2 else ''})" if count > 1 else ""


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
        return _line_of(node, loc)

    check_trust(spec, source, line_of, trust_code=trust_code)
    check_names(spec, source, line_of)
    variants = expand(spec, data, source, trust_code)
    # Dry run: resolve every variant once so template mistakes surface at load time.
    from mosaic_gym.scenario.resolve import resolve

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
