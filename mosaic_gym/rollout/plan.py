"""Which episodes to play: the episode plan and the one way to draw a limited subset.

An episode is named by a scenario variant, an attack strategy (``None``: no attack, the
benign variant of an injection scenario) and a reset seed: :class:`EpisodeSpec`. Playing
the same spec twice gives the same world and the same observations; a *group* is ``k``
rollouts of one spec.

:func:`episode_plan` lists every spec of a scenario pool; :func:`episode_subset` draws
``limit`` of them. The draw is **always stratified over categories** (benign, harmful,
injection, privacy), round-robin: attacked injection episodes are about two thirds of the
library's plan, so a uniform sample of 20 may hold no benign task at all, and the first 20
in library order were all benign (``mosaic eval --limit 20`` used to do that). Within a
category the draw is uniform under ``seed``; the subset keeps plan order. ``mosaic eval``,
``mosaic collect``, the replication, DPO collection and GRPO datasets all draw this way.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mosaic_gym.attacks import list_strategies
from mosaic_gym.core.seeding import sampling_seed


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode to play: a variant, an attack (or ``None``) and a reset seed."""

    scenario_id: str
    attack: str | None
    seed: int
    category: str = ""
    """The variant's category, for stratified draws (``""``: unknown, one stratum)."""

    @property
    def key(self) -> str:
        """``scenario|attack|seed``: stable, and the same for every rollout of a group."""
        return f"{self.scenario_id}|{self.attack or 'none'}|{self.seed}"

    @property
    def options(self) -> dict[str, Any]:
        """The ``reset`` options that select this episode."""
        return {"scenario": self.scenario_id, "attack": self.attack or "none"}

    def sampling_seed(self, index: int) -> int:
        """The sampling seed of rollout ``index`` of this episode's group."""
        return sampling_seed(self.key, index)

    def as_dict(self) -> dict[str, Any]:
        return {"scenario_id": self.scenario_id, "attack": self.attack, "seed": self.seed,
                "category": self.category}


def episode_plan(variants: Iterable[Any], seeds: Iterable[int],
                 attack: str = "all") -> list[EpisodeSpec]:
    """Every (variant, attack, seed) of ``variants``, in library order.

    ``attack="all"`` plays each injection scenario once without attack (its benign variant)
    and once per strategy it allows; a strategy name plays that one only (on injection
    scenarios; others play unattacked); ``"none"`` plays benign variants only.

    Raises ``ValueError`` for an unknown strategy name.
    """
    strategies = list_strategies()
    if attack not in ("all", "none", "random") and attack not in strategies:
        raise ValueError(f"unknown attack {attack!r}; expected 'all', 'none' or one of "
                         f"{', '.join(strategies)}")
    seed_list = list(seeds)
    plan = []
    for variant in variants:
        injection = variant.spec.injection
        if injection is None or attack == "none":
            attacks: list[str | None] = [None]
        elif attack == "all":
            attacks = [None, *(strategies if injection.strategies == "all"
                               else injection.strategies)]
        else:
            attacks = [attack]
        plan += [EpisodeSpec(variant.id, name, seed, variant.category)
                 for name in attacks for seed in seed_list]
    return plan


def episode_subset(plan: Sequence[EpisodeSpec], limit: int | None,
                   seed: int = 0) -> list[EpisodeSpec]:
    """``limit`` episodes of ``plan`` drawn round-robin over categories, in plan order.

    All of ``plan`` when ``limit`` is ``None`` or not smaller. Raises ``ValueError`` for a
    negative limit.
    """
    if limit is None or limit >= len(plan):
        return list(plan)
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    rng = random.Random(seed)
    buckets: dict[str, list[int]] = {}
    for index, spec in enumerate(plan):
        buckets.setdefault(spec.category, []).append(index)
    for indices in buckets.values():
        rng.shuffle(indices)
    chosen: list[int] = []
    while len(chosen) < limit:
        for name in sorted(buckets):
            if buckets[name] and len(chosen) < limit:
                chosen.append(buckets[name].pop())
    return [plan[i] for i in sorted(chosen)]


def category_counts(plan: Iterable[EpisodeSpec]) -> Mapping[str, int]:
    """How many episodes of each category a plan holds."""
    counts: dict[str, int] = {}
    for spec in plan:
        counts[spec.category] = counts.get(spec.category, 0) + 1
    return counts
