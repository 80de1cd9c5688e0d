"""``mosaic collect``: groups of ``k`` rollouts of the same task, written as resumable JSONL.

A *group* is ``k`` rollouts of one :class:`~mosaic_gym.rollout.plan.EpisodeSpec` (scenario
variant, attack, reset seed): the same world and the same observations until the policies'
actions differ. Each rollout of a group gets its own sampling seed
(:meth:`EpisodeSpec.sampling_seed`), so a sampling policy gives varied groups, which the
preference oracle then ranks (GRPO group rewards, DPO pairs). The groups are played by the
one driver (:func:`~mosaic_gym.rollout.driver.play_groups`): ``num_envs`` environments in
lockstep, a batched policy generating every live episode's turn in one call.

File format (:mod:`mosaic_gym.rollout.store`): ``OUT`` holds one row per finished group,
``{"type": "group", "key", "scenario_id", "attack", "seed", "category", "k", "rollouts":
[trajectory...]}`` (each rollout a :class:`~mosaic_gym.core.trajectory.Trajectory` in JSON,
with ``policy``, ``rollout_index`` and ``sampling_seed``); the settings (``format``,
``policy``, ``env``, ``k``, ``split``, ``attack``, ``backend``, ``scenario``, ``seeds``,
``limit``, ``created``) and the list of runs are in ``OUT.manifest.json``. ``OUT`` loads with
``datasets.load_dataset("json", data_files=OUT)`` (or :func:`load_groups_dataset`).

Resuming: the same collection run again skips the groups already in the file; a last line cut
short by a killed run is dropped and that group collected again; nothing is duplicated.
Settings that disagree on policy, env, k, split, attack, backend or scenario are refused;
seeds and limit may change between runs. ``limit`` draws a subset stratified over categories.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from mosaic_gym.agent.policy import PolicySource, check_policy, policy_name
from mosaic_gym.core.trajectory import Trajectory
from mosaic_gym.envs.registration import make_env
from mosaic_gym.errors import CollectError
from mosaic_gym.rollout.driver import play_groups
from mosaic_gym.rollout.plan import EpisodeSpec, episode_plan, episode_subset
from mosaic_gym.rollout.store import JsonlStore, group_row, now, read_manifest, read_rows

FORMAT = "mosaic-collect/2"
RESUME_FIELDS = ("policy", "env", "k", "split", "attack", "backend", "scenario")

__all__ = ["CollectError", "FORMAT", "collect", "group_row", "load_groups_dataset",
           "plan_groups", "read_groups", "read_header", "summarize_collection"]


def plan_groups(env: Any, seeds: Iterable[int], attack: str = "all",
                limit: int | None = None, seed: int = 0) -> list[EpisodeSpec]:
    """Every group of an environment's scenario pool; with ``limit``, a stratified subset."""
    return episode_subset(episode_plan(env.unwrapped.pool, seeds, attack=attack), limit, seed)


def read_groups(path: str | Path) -> Iterator[dict[str, Any]]:
    """The group rows of a collection file (either format), a cut-off last line skipped."""
    return (row for row in read_rows(path) if row.get("type", "group") == "group")


def read_header(path: str | Path) -> dict[str, Any] | None:
    """The collection's settings (its manifest), or ``None`` for a file that has none."""
    return read_manifest(path)


def load_groups_dataset(path: str | Path) -> Any:
    """The collection as a ``datasets.Dataset`` (one row per group; needs ``datasets``)."""
    from datasets import load_dataset

    return load_dataset("json", data_files=str(path), split="train")


def collect(policy: PolicySource, *, env_id: str = "mosaic/All-v0",
            out: str | Path = Path("runs/collect/rollouts.jsonl"), k: int = 4,
            seeds: int | Iterable[int] = 1, split: str = "train", attack: str = "all",
            backend: str = "fake", scenario: str | None = None, num_envs: int = 8,
            limit: int | None = None, ray_address: str | None = None,
            num_actors: int | None = None, actor_options: Mapping[str, Any] | None = None,
            quiet: bool = False, fresh: bool = False) -> Path:
    """Collect groups of ``k`` rollouts of ``policy`` into the JSONL file ``out``; resumable.

    ``seeds`` is a count (``range(seeds)``) or the reset seeds themselves; ``limit`` keeps a
    stratified subset of that many groups. With ``ray_address`` (an address for ``ray.init``,
    or ``"local"`` to start a local instance) groups are spread over ``num_actors`` Ray
    actors, each holding its own ``num_envs`` environments and its own policy; the driver
    writes. Returns ``out``. Raises :class:`CollectError` (a
    missing Ray), :class:`~mosaic_gym.errors.RunFileError` (``out`` holds another
    collection or is being written) and ``ValueError`` (bad arguments), all before anything
    is played.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("no seeds to collect")
    if k < 2:
        raise ValueError(f"k must be at least 2 (a group needs pairs), got {k}")
    if num_envs < 1:
        raise ValueError(f"num_envs must be at least 1, got {num_envs}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    env_kwargs = {"split": split if scenario is None else None, "backend": backend,
                  "scenario": scenario, "attack": "none"}
    probe = make_env(env_id, **env_kwargs)
    try:
        specs = plan_groups(probe, seed_list, attack=attack, limit=limit)
    finally:
        probe.close()
    check_policy(policy)
    if ray_address is not None:
        from mosaic_gym.rollout.ray_actors import init_ray

        init_ray(ray_address)  # fail before touching the file when Ray is missing
    out = Path(out)
    settings = {"format": FORMAT, "policy": policy_name(policy), "env": env_id, "k": k,
                "split": split, "attack": attack, "backend": backend, "scenario": scenario,
                "seeds": seed_list, "limit": limit, "created": now()}
    console = Console(quiet=quiet, stderr=True)
    store = JsonlStore(out, settings, key=lambda row: str(row.get("key")),
                       must_match=RESUME_FIELDS, fresh=fresh)
    with store:
        todo = [spec for spec in specs if spec.key not in store.done]
        if len(todo) < len(specs):
            console.print(f"resuming {out}: {len(specs) - len(todo)} of {len(specs)} groups "
                          "already there")
        envs: list[Any] = []
        if ray_address is not None:
            from mosaic_gym.rollout.ray_actors import collect_with_ray

            stream: Iterator[dict[str, Any]] = collect_with_ray(
                todo, address=ray_address, policy=policy, env_id=env_id, k=k,
                num_envs=num_envs, num_actors=num_actors, actor_options=actor_options,
                env_kwargs=env_kwargs)
        else:
            envs = [make_env(env_id, **env_kwargs) for _ in range(num_envs)]
            stream = (group_row(spec, rollouts)
                      for spec, rollouts in play_groups(envs, policy, todo, k))
        columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn())
        try:
            with Progress(*columns, console=console, disable=quiet) as progress:
                task = progress.add_task(f"{settings['policy']} on {env_id} (k={k})",
                                         total=len(todo))
                for row in stream:
                    store.write(row)
                    progress.advance(task)
        finally:
            for env in envs:
                env.close()
        written = len(store.done)
    console.print(f"wrote {out} ({written} groups of {k})")
    return out


def summarize_collection(path: str | Path) -> dict[str, float]:
    """Figures of a collection file: how safe the rollouts are and how much the groups
    separate them (a group with no strict preference gives no DPO pair and no GRPO signal)."""
    from mosaic_gym.judge.preference import PreferenceOracle, format_reward

    oracle = PreferenceOracle()
    groups = rollouts = safe = correct = informative = pairs = 0
    fmt = 0.0
    for group in read_groups(path):
        records = [Trajectory.load(r) for r in group["rollouts"]]
        groups += 1
        rollouts += len(records)
        safe += sum(bool(r.outcome and r.outcome.safe) for r in records)
        correct += sum(bool(r.outcome and r.outcome.correct) for r in records)
        fmt += sum(format_reward(r) for r in records)
        strict = sum(oracle.compare(a, b) != 0.5
                     for i, a in enumerate(records) for b in records[i + 1:])
        informative += strict > 0
        pairs += strict
    per = max(rollouts, 1)
    return {"groups": groups, "rollouts": rollouts, "safe_rate": safe / per,
            "correct_rate": correct / per, "mean_format_reward": fmt / per,
            "informative_groups": informative / max(groups, 1), "strict_pairs": pairs}

