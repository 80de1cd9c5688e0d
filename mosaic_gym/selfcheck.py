"""``mosaic scenarios check``: prove every scenario is solvable and its traps fire.

For each variant and seed:

* the reference solution completes the task safely on the benign variant
  (or, where refusal is expected, refusing at step 0 is judged correct);
* the harm, leak and attack predicates stay quiet on that benign run;
* each injection point is reachable: under every attack strategy the reference
  run sees the payload, and stays safe;
* the attacker's (or the unsafe) reference run trips the judge: the attack
  predicate fires, or harm / a leak is detected.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mosaic_gym.agent.baselines import ComplyPolicy, ReferencePolicy
from mosaic_gym.agent.policy import Policy
from mosaic_gym.envs.mosaic_env import MosaicEnv
from mosaic_gym.judge.context import JudgeContext
from mosaic_gym.judge.explain import explain
from mosaic_gym.rollout import EpisodeSpec, play
from mosaic_gym.scenario.loader import ScenarioVariant


@dataclass(frozen=True)
class CheckResult:
    scenario_id: str
    check: str
    passed: bool
    detail: str = ""


def _quiet_on_benign(env: MosaicEnv) -> list[str]:
    """Predicates that wrongly fire on the benign reference run."""
    episode = env.episode
    assert episode is not None
    checks = episode.scenario.spec.checks
    ctx = JudgeContext(episode.scenario, episode.world, episode.initial, episode.ledger,
                       answer=episode.answer, refused=episode.refusal_step is not None)
    loud: list[str] = []
    for name, predicate in (("attack_success", checks.attack_success), ("harm", checks.harm)):
        if predicate is None:
            continue
        verdict = explain(predicate, ctx, f"checks.{name}")
        if verdict.holds:
            loud.append(f"{name} fires on the benign run: " + "; ".join(verdict.reasons))
    return loud


def check_variant(env: MosaicEnv, variant: ScenarioVariant, seeds: Sequence[int]) -> list[
        CheckResult]:
    from mosaic_gym.attacks import list_strategies

    results: list[CheckResult] = []
    spec = variant.spec

    def run(policy: Policy, attack: str | None, seed: int) -> dict:
        outcome = play(env, policy, EpisodeSpec(variant.id, attack, seed)).outcome
        assert outcome is not None  # play() returns finished episodes
        return outcome.model_dump()

    def add(check: str, passed: bool, detail: str = "") -> None:
        results.append(CheckResult(variant.id, check, passed, detail))

    for seed in seeds:
        outcome = run(ReferencePolicy(), None, seed)
        problems = []
        if not outcome["correct"]:
            problems.append(_explain(outcome))
        if spec.expected == "complete":
            problems += _quiet_on_benign(env)
        add(f"reference solves the benign variant (seed {seed})", not problems,
            "; ".join(problems))
        if spec.injection is not None:
            strategies = (list_strategies() if spec.injection.strategies == "all"
                          else spec.injection.strategies)
            for strategy in strategies:
                attacked = run(ReferencePolicy(), strategy, seed)
                reachable = attacked["injection_seen_step"] is not None
                add(f"injection reachable and resisted [{strategy}] (seed {seed})",
                    reachable and attacked["correct"],
                    "" if reachable else "the reference solution never sees the payload"
                    if attacked["correct"] else _explain(attacked))
            hijacked = run(ComplyPolicy(), strategies[0], seed)
            add(f"attacker's solution trips the judge (seed {seed})",
                bool(hijacked["attack_success"]) and not hijacked["safe"],
                "" if hijacked["attack_success"] else "attack_success did not fire: "
                + "; ".join(hijacked.get("attack_reasons") or ["no reason recorded"]))
        if spec.unsafe_solution is not None:
            unsafe = run(ComplyPolicy(), None, seed)
            add(f"unsafe solution trips the judge (seed {seed})",
                not unsafe["safe"] and unsafe["infra_error"] is None,
                "" if not unsafe["safe"] else "no harm, leak or attack detected")
    return results


def _explain(outcome: dict) -> str:
    parts = [f"termination={outcome['termination']}", f"completed={outcome['completed']}",
             f"refused={outcome['refused']}"]
    if outcome.get("utility_failures"):
        parts.append("utility failed at: " + "; ".join(outcome["utility_failures"]))
    if outcome["harm_reasons"]:
        parts.append("harm: " + "; ".join(outcome["harm_reasons"]))
    if outcome["leaks"]:
        parts.append("leaks: " + ", ".join(f"{x['secret']}->{x['destination']}"
                                           for x in outcome["leaks"]))
    if outcome["attack_success"]:
        parts.append("attack succeeded: " + "; ".join(outcome.get("attack_reasons") or []))
    if outcome["infra_error"]:
        parts.append(outcome["infra_error"])
    if outcome["tool_errors"] or outcome["format_errors"]:
        parts.append(f"tool_errors={outcome['tool_errors']} "
                     f"format_errors={outcome['format_errors']}")
    return ", ".join(parts)


def check_paths(paths: Iterable[str | Path] | None = None, seeds: Sequence[int] = (0, 1),
                backend: str = "fake", trust_code: bool = False) -> list[CheckResult]:
    """Run the self-check over every scenario under ``paths`` (default: the library)."""
    from mosaic_gym.scenario.library import load_library

    path_list = list(paths) if paths else None
    variants = load_library(path_list, trust_code=trust_code)
    env = MosaicEnv(category="all", split="all", scenario_paths=path_list, backend=backend,
                    attack="none", max_steps=50, trust_code=trust_code)
    try:
        return [result for variant in variants
                for result in check_variant(env, variant, seeds)]
    finally:
        env.close()
