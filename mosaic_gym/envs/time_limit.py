"""Truncations by a wrapper end the episode judged.

A wrapper such as Gymnasium's ``TimeLimit`` cuts an episode short by flipping ``truncated``;
the environment below never learns of it, so the step it returned carries no verdict and a
reward of 0, and the episode's outcome is lost. Two wrappers close that gap:

* :class:`JudgeTruncation` sits *outside* other wrappers (``gym.make`` puts it outermost for
  every ``mosaic/*`` id): when a step comes back truncated without an ``outcome``, it ends
  the episode (:meth:`MosaicEnv.finish`) and returns the judged ``info`` and the episode's
  reward instead. So ``gym.make(id, max_episode_steps=N)`` ends judged at step ``N``.
* :class:`JudgedTimeLimit` is a ``TimeLimit`` that does the same, for wrapping an
  environment by hand (``JudgedTimeLimit(env, 10)``). A plain ``TimeLimit`` applied by hand
  on top of ``gym.make(...)`` is outside everything mosaic-gym can see; use this one, or the
  environment's own ``max_steps=``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.utils import RecordConstructorArgs
from gymnasium.wrappers import TimeLimit


def _judged(env: gym.Env, step: tuple[Any, ...]) -> tuple[Any, ...]:
    observation, reward, terminated, truncated, info = step
    if not truncated or terminated or "outcome" in info:
        return step
    base = env.unwrapped
    finish = getattr(base, "finish", None)
    if finish is None:
        return step
    info = finish("max_steps")
    episode = getattr(base, "episode", None)
    if episode is not None and episode.outcome is not None:
        reward = float(episode.reward_fn(episode.outcome))
    return observation, reward, terminated, truncated, info


class JudgeTruncation(gym.Wrapper, RecordConstructorArgs):
    """Judge an episode that an inner wrapper truncated (see the module docstring)."""

    def __init__(self, env: gym.Env) -> None:
        RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def step(self, action: Any) -> tuple[Any, ...]:
        return _judged(self.env, self.env.step(action))


class JudgedTimeLimit(TimeLimit):
    """``TimeLimit`` whose truncation ends the episode judged."""

    def step(self, action: Any) -> tuple[Any, ...]:
        return _judged(self.env, super().step(action))
