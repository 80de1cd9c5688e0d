"""Gymnasium environments: the MOSAIC environment, its episode state machine, registration.

``import mosaic_gym`` registers the ids (:data:`ENV_IDS`); :func:`make_env` is
``gymnasium.make`` with them registered. The heavy module (:mod:`.mosaic_env`) is imported
on first use.
"""

from __future__ import annotations

from mosaic_gym.envs.registration import ENV_IDS, make_env, register_envs

__all__ = ["ENV_IDS", "make_env", "register_envs"]
