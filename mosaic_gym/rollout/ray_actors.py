"""Rollout collection over a Ray cluster: actors hold environments and a policy each.

Each :class:`RolloutWorker` actor holds its own ``num_envs`` environments and its own policy
(loaded inside the actor) and plays the chunks of groups it is sent with the one rollout
driver (:func:`~mosaic_gym.rollout.driver.play_groups`). The driver keeps two chunks in
flight per actor, takes results as they finish with ``ray.wait`` and hands the groups back to
:func:`~mosaic_gym.rollout.collect.collect`, which writes them. Everything distributed is Ray's
own machinery (``ray.init``, actors, ``ray.wait``); this module only splits the work.

Only this module imports ray, and only :func:`collect` with a Ray address imports it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mosaic_gym.envs.registration import make_env
from mosaic_gym.errors import CollectError
from mosaic_gym.rollout.plan import EpisodeSpec


class RolloutWorker:
    """The body of a Ray actor: its own environments and its own policy."""

    def __init__(self, policy: Any, env_id: str, k: int, num_envs: int,
                 env_kwargs: Mapping[str, Any]) -> None:
        from mosaic_gym.agent.policy import make_policy, policy_name

        self.k = k
        # A recipe is loaded once per actor; a baseline name stays a name (one per slot).
        self.policy = (make_policy(policy) if isinstance(policy, str)
                       and policy.endswith((".yaml", ".yml")) else policy)
        if self.policy is not policy and not getattr(self.policy, "name", None):
            self.policy.name = policy_name(policy)
        self.envs = [make_env(env_id, **dict(env_kwargs)) for _ in range(num_envs)]

    def collect(self, specs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        from mosaic_gym.rollout.driver import play_groups
        from mosaic_gym.rollout.store import group_row

        plan = [EpisodeSpec(**spec) for spec in specs]
        return [group_row(spec, rollouts)
                for spec, rollouts in play_groups(self.envs, self.policy, plan, self.k)]

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _portable_policy(policy: Any) -> Any:
    """A policy source that an actor can rebuild: names stay, local recipe paths go absolute."""
    if isinstance(policy, (str, os.PathLike)):
        path = Path(policy)
        return str(path.resolve()) if path.suffix in (".yaml", ".yml") and path.exists() \
            else str(policy)
    if hasattr(policy, "act"):
        raise ValueError("with Ray, give the policy as a name or recipe path (each actor loads "
                         "its own), not as a loaded policy object")
    return policy  # a picklable factory


def init_ray(address: str, **options: Any) -> None:
    """``ray.init`` once: ``"local"`` starts a local instance, anything else is an address.

    Raises :class:`~mosaic_gym.errors.CollectError` when ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise CollectError("--ray needs Ray: pip install 'mosaic-gym[ray]'") from None

    if ray.is_initialized():
        return
    if address == "local":
        ray.init(include_dashboard=False, **options)
    else:
        ray.init(address=address, **options)


def collect_with_ray(specs: Sequence[EpisodeSpec], *, address: str, policy: Any, env_id: str,
                     k: int, num_envs: int, env_kwargs: Mapping[str, Any],
                     num_actors: int | None = None,
                     actor_options: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Yield the groups of ``specs`` as Ray actors finish them (in completion order).

    ``num_actors`` defaults to the cluster's CPUs (at most one actor per chunk of work);
    ``actor_options`` go to ``.options()`` of each actor (e.g. ``{"num_gpus": 1}``).
    """
    import ray

    if not specs:
        return
    init_ray(address)
    source = _portable_policy(policy)
    chunk = max(1, math.ceil(num_envs / k))  # enough groups to fill an actor's envs
    chunks = [[spec.as_dict() for spec in specs[i:i + chunk]] for i in range(0, len(specs), chunk)]
    if num_actors is None:
        num_actors = max(1, int(ray.cluster_resources().get("CPU", 1)))
    num_actors = max(1, min(num_actors, len(chunks)))
    options = {"num_cpus": 1, **dict(actor_options or {})}
    remote = ray.remote(RolloutWorker).options(**options)
    actors: list[Any] = [remote.remote(source, env_id, k, num_envs, dict(env_kwargs))
              for _ in range(num_actors)]
    waiting = list(reversed(chunks))
    in_flight: dict[Any, Any] = {}

    def submit(actor: Any) -> None:
        if waiting:
            in_flight[actor.collect.remote(waiting.pop())] = actor

    try:
        for actor in actors:
            submit(actor)
            submit(actor)
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            actor = in_flight.pop(ready[0])
            groups = ray.get(ready[0])
            submit(actor)
            yield from groups
    finally:  # killing an actor also ends the chunks it still had
        for actor in actors:
            ray.kill(actor)
