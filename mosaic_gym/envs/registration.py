"""Registers the ``mosaic/*`` environment ids with Gymnasium."""

from __future__ import annotations

from typing import Any

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


JUDGED_TRUNCATION = "mosaic_gym.envs.time_limit:JudgeTruncation"


def register_envs() -> None:
    """Register every id once (safe to call again).

    Episodes end on their own (refusal, answer, ``max_steps``), so no ``TimeLimit`` is
    registered; ``gym.make(id, max_episode_steps=N)`` adds Gymnasium's, and the registered
    :class:`~mosaic_gym.envs.time_limit.JudgeTruncation` wrapper (outermost) judges the
    episode it cuts short.
    """
    from gymnasium.envs.registration import WrapperSpec, register, registry

    judged = WrapperSpec(name="JudgeTruncation", entry_point=JUDGED_TRUNCATION, kwargs={})
    for env_id, kwargs in ENV_IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=ENTRY_POINT, kwargs=dict(kwargs),
                     disable_env_checker=False, additional_wrappers=(judged,))
    for env_id, entry_point in SUITE_ENTRY_POINTS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry_point, disable_env_checker=False)


def make_env(env_id: str, **kwargs: Any) -> Any:
    """``gymnasium.make(env_id, **kwargs)`` with the ``mosaic/*`` ids registered; keyword
    arguments that are ``None`` are left out (the environment's defaults apply).

    Raises Gymnasium's ``NameNotFound``/``Error`` for an unknown id (with its suggestion).
    """
    import gymnasium as gym

    register_envs()
    return gym.make(env_id, **{k: v for k, v in kwargs.items() if v is not None})
