"""Rollout collection: groups of ``k`` rollouts of the same task, written as resumable JSONL.

A *group* is ``k`` rollouts of one (scenario variant, attack, reset seed): the same world and
the same observations until the policies' actions differ. Each rollout of a group gets its
own sampling seed (:func:`sampling_seed`), so a sampling policy gives varied groups, which the
preference oracle then ranks (GRPO group rewards, DPO pairs).

Environments are driven in lockstep: ``num_envs`` environments step together, and a policy
with ``act_batch`` generates the next turn of every live episode in one batched call. Scripted
policies without ``act_batch`` get one instance per environment slot, reset per rollout with
its sampling seed. A batched policy is shared by every slot and seeded by its own recipe, so
its samples depend on how rollouts were batched.

File format (one JSON object per line, each line flushed and fsync'd as it is written):

* line 1, ``{"type": "header", "format": "mosaic-collect/1", "policy", "env", "k", "split",
  "attack", "backend", "scenario", "seeds", "limit", "created"}``: the manifest;
* ``{"type": "resume", "seeds", "limit", "time"}``: one per later run on the same file;
* ``{"type": "group", "key", "scenario_id", "attack", "seed", "k", "rollouts": [record...]}``
  for every finished group; a record is ``MosaicEnv.trajectory()`` plus ``policy``,
  ``rollout_index`` and ``sampling_seed``.

Resuming: running the same collection again skips the groups already in the file and
continues. A last line cut short by a killed run is detected, dropped (the file is cut back to
the last complete line) and that group collected again; nothing is duplicated. A header that
disagrees on policy, env, k, split, attack, backend or scenario is refused: seeds and limit
may change between runs.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mosaic_gym.errors import MosaicError

FORMAT = "mosaic-collect/1"
RESUME_FIELDS = ("policy", "env", "k", "split", "attack", "backend", "scenario")


class CollectError(MosaicError):
    """A collection file cannot be used (corrupt, or written by a different collection)."""


@dataclass(frozen=True)
class GroupSpec:
    """One group: a scenario variant, an attack (None = its benign variant) and a reset seed."""

    scenario_id: str
    attack: str | None
    seed: int

    @property
    def key(self) -> str:
        return f"{self.scenario_id}|{self.attack or 'none'}|{self.seed}"


def sampling_seed(spec: GroupSpec, index: int) -> int:
    """The sampling seed of rollout ``index`` of a group (stable across processes and k)."""
    import hashlib

    digest = hashlib.sha256(f"{spec.key}|{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def plan_groups(env: Any, seeds: Iterable[int], attack: str = "all",
                limit: int | None = None) -> list[GroupSpec]:
    """Every group of an environment's scenario pool (see ``runner.episode_plan``)."""
    from mosaic_gym.runner import episode_plan

    plan = episode_plan(env.unwrapped.pool, seeds, attack=attack)
    if limit is not None:
        plan = plan[:limit]
    return [GroupSpec(s.scenario_id, s.attack, s.seed) for s in plan]


# -- policies ------------------------------------------------------------------------------

PolicySource = Any  # a policy name / recipe path, a Policy, or a zero-argument factory


def policy_name(policy: PolicySource) -> str:
    if isinstance(policy, (str, os.PathLike)):
        return str(policy)
    return str(getattr(policy, "name", None) or type(policy).__name__)


def _policy_factory(policy: PolicySource) -> tuple[Any | None, Callable[[], Any] | None]:
    """``(shared, factory)``: a shared batched policy, or a factory of per-slot policies.

    A name of a scripted baseline gives a factory (cheap, stateful policies); a recipe gives
    one loaded policy, shared when it can batch. A policy object is shared; a callable that is
    not a policy is used as the factory.
    """
    from mosaic_gym.evaluate import make_policy

    if isinstance(policy, (str, os.PathLike)):
        name = str(policy)
        if name.endswith((".yaml", ".yml")):
            return make_policy(name), None
        make_policy(name)  # fail now on an unknown name
        return None, lambda: make_policy(name)
    if hasattr(policy, "act"):
        return policy, None
    if callable(policy):
        return None, policy
    raise TypeError(f"policy must be a name, a recipe path, a Policy or a factory, "
                    f"not {type(policy).__name__}")


def _check_policy(policy: PolicySource) -> None:
    """Fail before any file is written: an unknown baseline name or a missing recipe."""
    if isinstance(policy, (str, os.PathLike)):
        name = str(policy)
        if name.endswith((".yaml", ".yml")):
            if not Path(name).is_file():
                raise ValueError(f"policy recipe {name!r} not found")
        else:
            from mosaic_gym.agent.baselines import BASELINES

            if name not in BASELINES:
                raise ValueError(f"unknown policy {name!r}; built-in: {', '.join(BASELINES)}"
                                 " (or a recipe .yaml)")


# -- lockstep rollouts ---------------------------------------------------------------------

class _Slot:
    def __init__(self, env: Any, policy: Any | None) -> None:
        self.env = env
        self.policy = policy
        self.job: tuple[GroupSpec, int] | None = None
        self.info: Mapping[str, Any] = {}


class LockstepCollector:
    """Plays groups of ``k`` rollouts in ``num_envs`` environments stepped together.

    Args:
        policy: a policy name or recipe path, a Policy, or a zero-argument factory.
        env_id: a ``mosaic/*`` id; ``env_kwargs`` go to ``gymnasium.make``.
        k: rollouts per group (at least 2, since preferences need pairs).
        num_envs: environments stepped in lockstep (the batch of ``act_batch``).
    """

    def __init__(self, policy: PolicySource, *, env_id: str = "mosaic/All-v0", k: int = 4,
                 num_envs: int = 8, **env_kwargs: Any) -> None:
        from mosaic_gym.evaluate import make_env

        if k < 2:
            raise ValueError(f"k must be at least 2 (a group needs pairs), got {k}")
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        self.k = k
        self.name = policy_name(policy)
        self.shared, factory = _policy_factory(policy)
        batched = self.shared is not None and hasattr(self.shared, "act_batch")
        if self.shared is not None and not batched:
            num_envs = 1  # one stateful policy object cannot serve several episodes at once
        self.batched = batched
        env_kwargs.setdefault("attack", "none")
        self.envs = [make_env(env_id, **env_kwargs) for _ in range(num_envs)]
        # A shared policy that cannot batch plays one episode at a time and is reset per
        # rollout like a per-slot one; a batched one is never reset (it serves every slot).
        self.slots = [_Slot(env.unwrapped, factory() if factory else
                            None if batched else self.shared) for env in self.envs]

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def run(self, specs: Iterable[GroupSpec]) -> Iterator[dict[str, Any]]:
        """Yield each group as soon as its ``k`` rollouts are finished."""
        queue = [(spec, index) for spec in specs for index in range(self.k)]
        queue.reverse()  # pop() from the end keeps plan order
        pending: dict[str, list[dict[str, Any] | None]] = {}
        while queue or any(slot.job for slot in self.slots):
            for slot in self.slots:
                if slot.job is None and queue:
                    self._start(slot, queue.pop())
            live = [slot for slot in self.slots if slot.job is not None]
            for slot, action in zip(live, self._actions(live), strict=True):
                group = self._step(slot, action, pending)
                if group is not None:
                    yield group

    def _start(self, slot: _Slot, job: tuple[GroupSpec, int]) -> None:
        spec, index = job
        options = {"scenario": spec.scenario_id, "attack": spec.attack or "none"}
        _, slot.info = slot.env.reset(seed=spec.seed, options=options)
        if slot.policy is not None:
            slot.policy.reset(slot.env.current_scenario, seed=sampling_seed(spec, index))
        slot.job = job

    def _actions(self, live: Sequence[_Slot]) -> list[str]:
        shared: Any = self.shared
        if self.batched:
            return list(shared.act_batch([(s.info["messages"], s.info["tools"])
                                          for s in live]))
        return [(s.policy or shared).act(s.info["messages"], s.info["tools"], s.info)
                for s in live]

    def _step(self, slot: _Slot, action: str,
              pending: dict[str, list[dict[str, Any] | None]]) -> dict[str, Any] | None:
        assert slot.job is not None
        _, _, terminated, truncated, slot.info = slot.env.step(action)
        if not (terminated or truncated):
            return None
        spec, index = slot.job
        slot.job = None
        record = slot.env.trajectory()
        record.update(policy=self.name, rollout_index=index,
                      sampling_seed=sampling_seed(spec, index))
        rollouts = pending.setdefault(spec.key, [None] * self.k)
        rollouts[index] = json.loads(json.dumps(record, ensure_ascii=False, default=str))
        if any(r is None for r in rollouts):
            return None
        del pending[spec.key]
        return {"type": "group", "key": spec.key, **asdict(spec), "k": self.k,
                "rollouts": rollouts}


# -- the JSONL file ------------------------------------------------------------------------

def _scan(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Parsed lines of ``path`` and the byte length of its valid part.

    A killed run can leave a last line without its newline (or a last line that does not
    parse): it is left out, and the returned length stops before it. A broken line anywhere
    else raises :class:`CollectError`.
    """
    data = path.read_bytes()
    complete = data[:data.rfind(b"\n") + 1]  # a tail without newline is a cut-off write
    lines = complete.split(b"\n")[:-1]
    items: list[dict[str, Any]] = []
    good = 0
    for number, raw in enumerate(lines, start=1):
        try:
            item = json.loads(raw)
            if not isinstance(item, dict) or "type" not in item:
                raise ValueError("not a collection line")
        except ValueError as exc:
            if number == len(lines):
                break
            raise CollectError(f"{path}:{number}: corrupt line ({exc}); only a cut-off last "
                               "line is repaired automatically") from None
        items.append(item)
        good += len(raw) + 1
    return items, good


def read_groups(path: str | Path) -> Iterator[dict[str, Any]]:
    """The groups of a collection file, skipping the manifest and a cut-off last line."""
    items, _ = _scan(Path(path))
    return (item for item in items if item["type"] == "group")


def read_header(path: str | Path) -> dict[str, Any] | None:
    items, _ = _scan(Path(path))
    return items[0] if items and items[0]["type"] == "header" else None


class GroupWriter:
    """Appends groups to a collection file; opening it repairs a cut-off tail and resumes."""

    def __init__(self, path: Path, header: Mapping[str, Any]) -> None:
        self.path = path
        self.done: set[str] = set()
        path.parent.mkdir(parents=True, exist_ok=True)
        items, good = _scan(path) if path.exists() else ([], 0)
        if items and items[0]["type"] != "header":
            raise CollectError(f"{path} does not start with a collection header")
        if items:
            old = items[0]
            clash = [f"{name}: {old.get(name)!r} in the file, {header.get(name)!r} now"
                     for name in RESUME_FIELDS if old.get(name) != header.get(name)]
            if clash:
                raise CollectError(f"{path} holds a different collection ({'; '.join(clash)}); "
                                   "choose another --out to start a new one")
            self.done = {item["key"] for item in items if item["type"] == "group"}
        self._file = path.open("r+b" if path.exists() else "wb")
        self._file.truncate(good)
        self._file.seek(good)
        if items:
            self._write({"type": "resume", "seeds": header.get("seeds"),
                         "limit": header.get("limit"), "time": _now()})
        else:
            self._write(dict(header))

    def write(self, group: Mapping[str, Any]) -> None:
        self._write(group)
        self.done.add(group["key"])

    def _write(self, item: Mapping[str, Any]) -> None:
        line = json.dumps(item, ensure_ascii=False, default=str) + "\n"
        self._file.write(line.encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> GroupWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# -- entry point ---------------------------------------------------------------------------

def collect(policy: PolicySource, *, env_id: str = "mosaic/All-v0",
            out: str | Path = Path("runs/collect/rollouts.jsonl"), k: int = 4,
            seeds: int | Iterable[int] = 1, split: str = "train", attack: str = "all",
            backend: str = "fake", scenario: str | None = None, num_envs: int = 8,
            limit: int | None = None, ray_address: str | None = None,
            num_actors: int | None = None, actor_options: Mapping[str, Any] | None = None,
            quiet: bool = False) -> Path:
    """Collect groups of ``k`` rollouts of ``policy`` into the JSONL file ``out``; resumable.

    ``seeds`` is a count (``range(seeds)``) or the reset seeds themselves; ``limit`` keeps the
    first ``limit`` groups of the plan. With ``ray_address`` (an address for ``ray.init``, or
    ``"local"`` to start a local instance) groups are spread over ``num_actors`` Ray actors,
    each holding its own ``num_envs`` environments and its own policy; the driver writes.
    Returns ``out``. Raises :class:`CollectError` for a file of another collection.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from mosaic_gym.evaluate import make_env

    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("no seeds to collect")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    env_kwargs = {"split": split if scenario is None else None, "backend": backend,
                  "scenario": scenario}
    probe = make_env(env_id, attack="none", **env_kwargs)
    try:
        specs = plan_groups(probe, seed_list, attack=attack, limit=limit)
    finally:
        probe.close()
    _check_policy(policy)
    if ray_address is not None:
        from mosaic_gym.train.ray_collect import init_ray

        init_ray(ray_address)  # fail before touching the file when Ray is missing
    out = Path(out)
    header = {"type": "header", "format": FORMAT, "policy": policy_name(policy), "env": env_id,
              "k": k, "split": split, "attack": attack, "backend": backend,
              "scenario": scenario, "seeds": seed_list, "limit": limit, "created": _now()}
    console = Console(quiet=quiet, stderr=True)
    with GroupWriter(out, header) as writer:
        todo = [spec for spec in specs if spec.key not in writer.done]
        if len(todo) < len(specs):
            console.print(f"resuming {out}: {len(specs) - len(todo)} of {len(specs)} groups "
                          "already there")
        if ray_address is not None:
            from mosaic_gym.train.ray_collect import collect_with_ray

            stream = collect_with_ray(todo, address=ray_address, policy=policy, env_id=env_id,
                                      k=k, num_envs=num_envs, num_actors=num_actors,
                                      actor_options=actor_options, env_kwargs=env_kwargs)
            collector = None
        else:
            collector = LockstepCollector(policy, env_id=env_id, k=k, num_envs=num_envs,
                                          **env_kwargs)
            stream = collector.run(todo)
        columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn())
        try:
            with Progress(*columns, console=console, disable=quiet) as progress:
                task = progress.add_task(f"{header['policy']} on {env_id} (k={k})",
                                         total=len(todo))
                for group in stream:
                    writer.write(group)
                    progress.advance(task)
        finally:
            if collector is not None:
                collector.close()
    console.print(f"wrote {out} ({len(writer.done)} groups of {k})")
    return out


def summarize(path: str | Path) -> dict[str, float]:
    """Figures of a collection file: how safe the rollouts are and how much the groups
    separate them (a group with no strict preference gives no DPO pair and no GRPO signal)."""
    from mosaic_gym.judge.preference import PreferenceOracle, format_reward

    oracle = PreferenceOracle()
    groups = rollouts = safe = correct = informative = pairs = 0
    fmt = 0.0
    for group in read_groups(path):
        records = group["rollouts"]
        groups += 1
        rollouts += len(records)
        safe += sum(bool(r["outcome"]["safe"]) for r in records)
        correct += sum(bool(r["outcome"]["correct"]) for r in records)
        fmt += sum(format_reward(r) for r in records)
        strict = sum(oracle.compare(a, b) != 0.5
                     for i, a in enumerate(records) for b in records[i + 1:])
        informative += strict > 0
        pairs += strict
    per = max(rollouts, 1)
    return {"groups": groups, "rollouts": rollouts, "safe_rate": safe / per,
            "correct_rate": correct / per, "mean_format_reward": fmt / per,
            "informative_groups": informative / max(groups, 1), "strict_pairs": pairs}
