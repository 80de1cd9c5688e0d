"""Play policies in environments and collect trajectories."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from mosaic_gym.agent.baselines import Policy
from mosaic_gym.envs.mosaic_env import MosaicEnv
from mosaic_gym.scenario.loader import ScenarioVariant


@dataclass(frozen=True)
class EpisodeSpec:
    """Which episode to play: a variant, an attack (or None) and a reset seed."""

    scenario_id: str
    attack: str | None
    seed: int


def episode_plan(variants: Iterable[ScenarioVariant], seeds: Iterable[int],
                 attack: str = "all") -> list[EpisodeSpec]:
    """Every (variant, attack, seed) to evaluate.

    ``attack="all"`` plays each injection scenario once without attack (its
    benign variant) and once per allowed strategy; a strategy name plays that
    one only; ``"none"`` plays benign variants only.
    """
    from mosaic_gym.attacks import list_strategies

    plan = []
    seeds = list(seeds)
    for variant in variants:
        injection = variant.spec.injection
        if injection is None or attack == "none":
            attacks: list[str | None] = [None]
        elif attack == "all":
            attacks = [None, *(list_strategies() if injection.strategies == "all"
                               else injection.strategies)]
        else:
            attacks = [attack]
        plan += [EpisodeSpec(variant.id, name, seed) for name in attacks for seed in seeds]
    return plan


class _Named(Protocol):
    @property
    def scenario_id(self) -> str: ...


_Spec = TypeVar("_Spec", bound=_Named)


def episode_subset(plan: Sequence[_Spec], limit: int | None, seed: int = 0,
                   category: Mapping[str, str] | None = None) -> list[_Spec]:
    """A seeded subset of ``limit`` episodes of ``plan`` (all of them when ``limit`` is
    ``None`` or not smaller), in plan order.

    Without ``category``, a uniform random sample. With it (scenario id -> category), drawn
    round-robin over the categories, so that each stays represented even where one
    dominates the plan (attacked injection episodes do).
    """
    import random

    if limit is None or limit >= len(plan):
        return list(plan)
    rng = random.Random(seed)
    if category is None:
        return [plan[i] for i in sorted(rng.sample(range(len(plan)), limit))]
    buckets: dict[str, list[int]] = {}
    for index, spec in enumerate(plan):
        buckets.setdefault(category[spec.scenario_id], []).append(index)
    for indices in buckets.values():
        rng.shuffle(indices)
    chosen: list[int] = []
    while len(chosen) < limit:
        for name in sorted(buckets):
            if buckets[name] and len(chosen) < limit:
                chosen.append(buckets[name].pop())
    return [plan[i] for i in sorted(chosen)]


def play(env: MosaicEnv, policy: Policy, spec: EpisodeSpec) -> dict[str, Any]:
    """Play one episode to its end; return its trajectory record."""
    options = {"scenario": spec.scenario_id, "attack": spec.attack or "none"}
    observation, info = env.reset(seed=spec.seed, options=options)
    policy.reset(env.current_scenario, seed=spec.seed)
    done = False
    while not done:
        action = policy.act(info["messages"], info["tools"], info)
        observation, _reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    return env.trajectory()


def play_all(env: MosaicEnv, policy: Policy, plan: Iterable[EpisodeSpec]) -> Iterator[
        dict[str, Any]]:
    for spec in plan:
        yield play(env, policy, spec)
