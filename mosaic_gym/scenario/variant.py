"""A scenario variant: one concrete member of a scenario file (pure data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mosaic_gym.scenario.schema import ScenarioSpec

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
