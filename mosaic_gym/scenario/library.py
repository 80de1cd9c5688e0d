"""Where the built-in scenario library lives, and a per-process cache of it."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from mosaic_gym.errors import ScenarioError
from mosaic_gym.scenario.loader import ScenarioVariant, load_paths

#: Set to a path list (os.pathsep-separated) to replace the built-in library.
ENV_VAR = "MOSAIC_SCENARIOS"


def library_dirs() -> list[Path]:
    """The scenario directories: ``$MOSAIC_SCENARIOS`` or the built-in library."""
    override = os.environ.get(ENV_VAR)
    if override:
        return [Path(part) for part in override.split(os.pathsep) if part]
    here = Path(__file__).resolve()
    candidates = [here.parents[2] / "scenarios",  # a checkout (or an editable install)
                  Path(sys.prefix) / "share" / "mosaic-gym" / "scenarios"]  # a wheel
    for candidate in candidates:
        if candidate.is_dir():
            return [candidate]
    raise ScenarioError(f"the scenario library was not found (looked in "
                        f"{', '.join(map(str, candidates))}); set {ENV_VAR}")


@lru_cache(maxsize=16)
def _load_cached(paths: tuple[str, ...], trust_code: bool) -> tuple[ScenarioVariant, ...]:
    return tuple(load_paths(paths, trust_code=trust_code))


def load_library(paths: Sequence[str | Path] | None = None, *,
                 trust_code: bool = False) -> tuple[ScenarioVariant, ...]:
    """All variants under ``paths`` (default: the library), parsed once per process.

    The cache holds immutable, validated specs only; every environment builds
    its own world from them.
    """
    chosen = [Path(p) for p in paths] if paths else library_dirs()
    return _load_cached(tuple(str(p.resolve()) for p in chosen), trust_code)


def find_variant(key: str, paths: Sequence[str | Path] | None = None, *,
                 trust_code: bool = False) -> list[ScenarioVariant]:
    """Variants for a file path, a scenario id, or a family id (its members).

    ``trust_code``: allow ``python:`` predicates (see :mod:`mosaic_gym.scenario.trust`).
    """
    if key.endswith((".yaml", ".yml")) or os.path.sep in key and Path(key).exists():
        return load_paths([key], trust_code=trust_code)
    variants = load_library(paths, trust_code=trust_code)
    exact = [v for v in variants if v.id == key]
    if exact:
        return exact
    members = [v for v in variants if v.id.startswith(key + "/")]
    if members:
        return members
    raise ScenarioError(f"no scenario with id {key!r} in the library", field="scenario")
