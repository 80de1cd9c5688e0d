"""The episodes of an external suite (AgentDojo, BFCL) and the env that plays them.

``mosaic eval --suite`` and the replication's zero-shot columns draw their episodes here,
so both play the same plan: for AgentDojo every user task alone (benign) and every (user
task x injection task) pair under one attack; for BFCL every item of the supported
categories; ``limit`` keeps a seeded subset round-robin over the strata (AgentDojo: benign
and injection; BFCL: its categories) with :func:`~mosaic_gym.rollout.plan.episode_subset`.
"""

from __future__ import annotations

from typing import Any

from mosaic_gym.errors import SuiteError
from mosaic_gym.rollout.plan import EpisodeSpec, episode_subset

SUITE_ENVS = {"agentdojo": "mosaic/AgentDojo-v0", "bfcl": "mosaic/BFCL-v0"}


def suite_env(suite: str, *, attack: str | None = None, agentdojo_suite: str = "all",
              max_steps: int | None = None) -> Any:
    """The env that plays a whole suite (AgentDojo: benign tasks and attacked pairs);
    ``max_steps`` overrides the suite's own turn limit.

    Raises :class:`~mosaic_gym.errors.SuiteError` for an unknown suite or one whose extra
    is not installed (the message names the extra)."""
    if suite == "agentdojo":
        from mosaic_gym.envs.suites.agentdojo import DEFAULT_ATTACK, AgentDojoEnv

        return AgentDojoEnv(suite=agentdojo_suite, injection_task="all",
                            attack=attack or DEFAULT_ATTACK, max_steps=max_steps)
    if suite == "bfcl":
        from mosaic_gym.envs.suites.bfcl import BFCLEnv

        return BFCLEnv(category="all", max_steps=max_steps)
    raise SuiteError(f"unknown suite {suite!r}; expected one of {', '.join(SUITE_ENVS)}")


def suite_plan(env: Any, suite: str, limit: int | None = None, seed: int = 0) -> list[EpisodeSpec]:
    """Every episode of the suite (or a stratified ``limit`` of them), in a stable order."""
    plan: list[EpisodeSpec] = []
    strata: dict[str, str] = {}
    for scenario in env.pool:
        injection = scenario.spec.injection
        if suite == "agentdojo":
            benign_id = scenario.id.rsplit("/", 1)[0]
            if benign_id not in strata:  # each user task once on its own
                plan.append(EpisodeSpec(benign_id, None, 0))
                strata[benign_id] = "benign"
            plan.append(EpisodeSpec(scenario.id, injection.strategies[0], 0))
            strata[scenario.id] = "injection"
        else:
            plan.append(EpisodeSpec(scenario.id, None, 0))
            strata[scenario.id] = scenario.domain
    plan = [EpisodeSpec(s.scenario_id, s.attack, s.seed, strata[s.scenario_id]) for s in plan]
    return episode_subset(plan, limit, seed=seed)


def suite_missing(suite: str) -> str | None:
    """Why ``suite`` cannot be played here (its extra is not installed), or ``None``."""
    try:
        suite_env(suite).close()
    except SuiteError as exc:
        return str(exc)
    return None
