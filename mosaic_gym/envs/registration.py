"""Registers the ``mosaic/*`` environment ids with Gymnasium."""

from __future__ import annotations

ENTRY_POINT = "mosaic_gym.envs.mosaic_env:MosaicEnv"

ENV_IDS: dict[str, dict[str, str]] = {
    "mosaic/Injection-v0": {"category": "injection"},
    "mosaic/Harmful-v0": {"category": "harmful"},
    "mosaic/Benign-v0": {"category": "benign"},
    "mosaic/Privacy-v0": {"category": "privacy"},
    "mosaic/All-v0": {"category": "all"},
    "mosaic/Scenario-v0": {},
}

#: External suites (optional extras): entry points are strings, imported only by make().
SUITE_ENTRY_POINTS: dict[str, str] = {
    "mosaic/AgentDojo-v0": "mosaic_gym.envs.suites.agentdojo:AgentDojoEnv",
    "mosaic/BFCL-v0": "mosaic_gym.envs.suites.bfcl:BFCLEnv",
}


def register_envs() -> None:
    """Register every id once (safe to call again)."""
    from gymnasium.envs.registration import register, registry

    for env_id, kwargs in ENV_IDS.items():
        if env_id not in registry:
            # Episodes end on their own (refusal, answer, max_steps): no TimeLimit wrapper.
            register(id=env_id, entry_point=ENTRY_POINT, kwargs=dict(kwargs),
                     disable_env_checker=False)
    for env_id, entry_point in SUITE_ENTRY_POINTS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry_point, disable_env_checker=False)
