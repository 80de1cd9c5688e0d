"""The one loop that plays episodes: N environment slots stepped in lockstep.

Every consumer plays through :class:`Lockstep`: ``mosaic eval`` (one rollout per episode),
``mosaic collect`` and DPO collection (groups of ``k`` rollouts of one episode), the
replication's evaluations (a batched model over many slots), the GRPO rollout function (an
actor that generates with the trainer and keeps token bookkeeping) and the Ray actors (each
holding a driver of its own). Sequential play is one slot; a group is ``k`` jobs of one
:class:`~mosaic_gym.rollout.plan.EpisodeSpec`.

What the driver asks of an :class:`Actor`: ``start`` when a slot begins a job, ``act`` for the
next turn of every live slot at once (``None`` for a slot means "end this episode now,
judged as it stands", e.g. when a model's context is full), ``observe`` after each step, and
``keep_going`` to decide whether another round is needed (a distributed trainer keeps going
while *any* process still has live episodes, since its generation calls are collective).
:class:`PolicyActor` adapts any :class:`~mosaic_gym.agent.policy.Policy`: a batched one
(``act_batch``) serves every slot in one call; a scripted one gets an instance per slot,
reset per rollout with the rollout's sampling seed.

Records come out in completion order, each with its job; the driver fills in ``policy``,
``rollout_index`` and ``sampling_seed`` on the record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mosaic_gym.agent.policy import Policy, PolicySource, policy_factory, policy_name
from mosaic_gym.core.trajectory import Trajectory
from mosaic_gym.envs.mosaic_env import MosaicEnv
from mosaic_gym.rollout.plan import EpisodeSpec


@dataclass(frozen=True)
class Job:
    """Rollout ``index`` of the group of ``spec``."""

    spec: EpisodeSpec
    index: int = 0

    @property
    def sampling_seed(self) -> int:
        return self.spec.sampling_seed(self.index)


@dataclass
class Slot:
    """One environment of the driver and the job it is playing (``None`` when idle)."""

    number: int
    env: MosaicEnv
    job: Job | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.info.get("messages") or ())

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self.info.get("tools") or ())


class Actor(Protocol):
    """Whoever writes the agent's turns for the driver's slots."""

    name: str

    def start(self, slot: Slot) -> None:
        """A slot has just been reset for ``slot.job``."""

    def act(self, live: Sequence[Slot]) -> Sequence[str | None]:
        """The next turn of each live slot (``None``: end that episode now)."""

    def observe(self, slot: Slot, done: bool) -> None:
        """``slot`` has been stepped with this actor's turn (``done``: its episode ended)."""

    def keep_going(self, live: int) -> bool:
        """Whether to play another round with ``live`` live slots here (default: ``live > 0``)."""


class PolicyActor:
    """An :class:`Actor` over a policy, a policy name or recipe, or a policy factory."""

    def __init__(self, policy: PolicySource, slots: int) -> None:
        self.name = policy_name(policy)
        shared, factory = policy_factory(policy)
        self.batched = shared is not None and hasattr(shared, "act_batch")
        self.shared = shared
        #: A shared policy that cannot batch plays one episode at a time (see ``slots``).
        self.slots = slots if factory is not None or self.batched else 1
        self._per_slot: list[Policy] | None = (
            [factory() for _ in range(self.slots)] if factory is not None else None)

    def _policy(self, slot: Slot) -> Any:
        return self._per_slot[slot.number] if self._per_slot is not None else self.shared

    def start(self, slot: Slot) -> None:
        # A batched policy serves every slot and is never reset (its recipe seeds it).
        if self.batched:
            return
        assert slot.job is not None
        self._policy(slot).reset(slot.env.current_scenario, seed=slot.job.sampling_seed)

    def act(self, live: Sequence[Slot]) -> list[str | None]:
        if not live:
            return []
        if self.batched:
            return list(self.shared.act_batch([(s.messages, s.tools) for s in live]))
        return [self._policy(s).act(s.messages, s.tools, s.info) for s in live]

    def observe(self, slot: Slot, done: bool) -> None:
        return None

    def keep_going(self, live: int) -> bool:
        return live > 0


class Lockstep:
    """Plays jobs on ``envs`` (one slot each), all live slots stepping together.

    Args:
        envs: environments (``MosaicEnv`` or a Gymnasium wrapper of one); the driver does
            not close them.
        actor: writes the turns (see :class:`Actor`); :class:`PolicyActor` for a policy.
    """

    def __init__(self, envs: Sequence[Any], actor: Actor) -> None:
        if not envs:
            raise ValueError("the driver needs at least one environment")
        self.actor = actor
        self.slots = [Slot(i, env.unwrapped) for i, env in enumerate(envs)]

    def run(self, jobs: Iterable[Job],
            on_done: Callable[[Job, Trajectory], None] | None = None,
            ) -> Iterator[tuple[Job, Trajectory]]:
        """Yield ``(job, record)`` for every job, in completion order."""
        queue = list(jobs)
        queue.reverse()  # pop() from the end keeps plan order
        while True:
            for slot in self.slots:
                if slot.job is None and queue:
                    self._start(slot, queue.pop())
            live = [slot for slot in self.slots if slot.job is not None]
            if not self.actor.keep_going(len(live)):
                break
            actions = self.actor.act(live)
            if len(actions) != len(live):
                raise RuntimeError(f"{self.actor.name} gave {len(actions)} turns for "
                                   f"{len(live)} live episodes")
            for slot, action in zip(live, actions, strict=True):
                finished = self._step(slot, action)
                if finished is not None:
                    if on_done is not None:
                        on_done(*finished)
                    yield finished

    def _start(self, slot: Slot, job: Job) -> None:
        _, slot.info = slot.env.reset(seed=job.spec.seed, options=job.spec.options)
        slot.job = job
        self.actor.start(slot)

    def _step(self, slot: Slot, action: str | None) -> tuple[Job, Trajectory] | None:
        assert slot.job is not None
        if action is None:
            slot.info = slot.env.finish("max_steps")
            done = True
        else:
            _, _, terminated, truncated, slot.info = slot.env.step(action)
            done = terminated or truncated
        self.actor.observe(slot, done)
        if not done:
            return None
        job, slot.job = slot.job, None
        record = slot.env.trajectory().model_copy(update={
            "policy": self.actor.name, "rollout_index": job.index,
            "sampling_seed": job.sampling_seed})
        return job, record


def play(env: Any, policy: Policy, spec: EpisodeSpec) -> Trajectory:
    """Play one episode of ``spec`` with ``policy`` (one slot) and return its record."""
    actor = PolicyActor(policy, 1)
    ((_, record),) = Lockstep([env], actor).run([Job(spec)])
    return record


def play_plan(envs: Sequence[Any], policy: PolicySource, plan: Iterable[EpisodeSpec],
              ) -> Iterator[tuple[Job, Trajectory]]:
    """Every episode of ``plan`` once, on as many slots as ``envs`` (completion order)."""
    actor = PolicyActor(policy, len(envs))
    return Lockstep(list(envs)[: actor.slots], actor).run(Job(spec) for spec in plan)


def play_groups(envs: Sequence[Any], policy: PolicySource, specs: Iterable[EpisodeSpec],
                k: int) -> Iterator[tuple[EpisodeSpec, list[Trajectory]]]:
    """Groups of ``k`` rollouts of each spec, each yielded once its ``k`` rollouts are done.

    Raises ``ValueError`` for ``k < 1``.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    actor = PolicyActor(policy, len(envs))
    driver = Lockstep(list(envs)[: actor.slots], actor)
    pending: dict[str, list[Trajectory | None]] = {}
    jobs = (Job(spec, index) for spec in specs for index in range(k))
    for job, record in driver.run(jobs):
        rollouts = pending.setdefault(job.spec.key, [None] * k)
        rollouts[job.index] = record
        if all(r is not None for r in rollouts):
            del pending[job.spec.key]
            yield job.spec, [r for r in rollouts if r is not None]
