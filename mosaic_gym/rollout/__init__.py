"""Playing episodes: the one place that does it.

* :mod:`.plan`: :class:`EpisodeSpec` (variant, attack, reset seed), :func:`episode_plan` and
  :func:`episode_subset`, the one stratified way to draw a limited set of episodes.
* :mod:`.driver`: :class:`Lockstep`, N environment slots stepped together by an
  :class:`Actor` (:class:`PolicyActor` for any policy); :func:`play`, :func:`play_plan`,
  :func:`play_groups`. ``mosaic eval``, ``mosaic collect``, the replication, GRPO and the Ray
  actors all play through it.
* :mod:`.store`: locked, resumable JSON-lines run files with a side manifest.
* :mod:`.collect`: ``mosaic collect`` (groups of ``k`` rollouts); :mod:`.ray_actors`: the
  same over a Ray cluster.
"""

from __future__ import annotations

from mosaic_gym.rollout.driver import (
           Actor,
           Job,
           Lockstep,
           PolicyActor,
           play,
           play_groups,
           play_plan,
)
from mosaic_gym.rollout.plan import EpisodeSpec, episode_plan, episode_subset

__all__ = ["Actor", "EpisodeSpec", "Job", "Lockstep", "PolicyActor", "episode_plan",
           "episode_subset", "play", "play_groups", "play_plan"]
