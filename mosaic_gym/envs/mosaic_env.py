"""The Gymnasium environment: text actions in the MOSAIC format, text observations.

One episode = one scenario variant, one seed, one attack strategy (or none).
``reset(seed=s)`` determines the scenario choice, the attack, every Faker value
and therefore every observation. ``info`` carries the chat ``messages``
(OpenAI format), the ``tools`` schemas, the scenario id, the ledger so far and,
when the episode ends, the ``outcome`` (a plain dict).

The environment selects and speaks Gymnasium; the episode itself is the state machine of
:mod:`mosaic_gym.envs.episode`. Gymnasium conventions it keeps:

* ``gym.make(id, max_episode_steps=N)`` ends the episode *judged* at step ``N`` (the
  environment reads its spec's limit, so the ``TimeLimit`` wrapper's truncation and the
  verdict come at the same step); :meth:`MosaicEnv.finish` judges an episode that a caller
  stops for a reason of its own.
* Environments pickle and deep-copy, before and after ``reset``: the copy holds the
  configuration, the RNG state and the episode's replay recipe (scenario, attack, episode
  seed and the actions so far), and replays it, which gives the same world because episodes
  are deterministic. Async vector environments and Ray can ship them.
* Text spaces flatten (``gymnasium.spaces.flatten``, ``FlattenObservation``) to code points,
  whatever the characters (see :mod:`mosaic_gym.envs.spaces`).
* A non-string action is a format error, not a final answer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym

from mosaic_gym.attacks import get_strategy, list_strategies
from mosaic_gym.core.trajectory import Trajectory
from mosaic_gym.envs.accessors import EpisodeAccessors
from mosaic_gym.envs.episode import Episode, offered_tools
from mosaic_gym.envs.rewards import RewardFn, get_reward
from mosaic_gym.envs.selection import empty_selection_message
from mosaic_gym.envs.spaces import UnicodeText
from mosaic_gym.errors import SandboxError, ScenarioError
from mosaic_gym.judge.outcome import Termination
from mosaic_gym.sandbox.base import Sandbox
from mosaic_gym.sandbox.registry import make_sandbox
from mosaic_gym.scenario.library import find_variant, load_library
from mosaic_gym.scenario.loader import ScenarioVariant
from mosaic_gym.scenario.resolve import ResolvedScenario, resolve
from mosaic_gym.tools import ToolRegistry, standard_tools

MAX_TEXT = 200_000
DEFAULT_MAX_STEPS = 15
SPLITS = ("train", "test", "ood", "all")


class MosaicEnv(EpisodeAccessors, gym.Env[str, str]):
    """A tool-use episode judged from ground truth.

    Tests read the episode through the accessors of :class:`EpisodeAccessors` (secrets,
    world snapshots, ledger, declared effects), not through private attributes.

    Args:
        category: "benign", "harmful", "injection", "privacy", or "all".
        scenario: a scenario id, family id or YAML path (``mosaic/Scenario-v0``).
        backend: the sandbox backend: "fake" (default, in-process), "docker", or any
            name registered with :func:`mosaic_gym.sandbox.register_sandbox`.
        attack: strategy name, "random" (a strategy drawn per episode), or
            "none" (benign variants of injection scenarios).
        split: "train", "test", "ood" or "all".
        max_steps: steps before truncation (default: the scenario's, else 15).
        reward: a named scheme ("sparse", "shaped") or ``callable(outcome) -> float``.
        scenario_paths: directories or files replacing the built-in library.
        trust_code: let scenario files run code (``python:`` predicates); off by
            default, since a scenario file is data (see mosaic_gym.scenario.trust).
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        category: str = "all",
        scenario: str | None = None,
        backend: str = "fake",
        attack: str = "random",
        split: str = "train",
        max_steps: int | None = None,
        reward: str | RewardFn = "sparse",
        scenario_paths: Sequence[str | Path] | None = None,
        render_mode: str | None = None,
        trust_code: bool = False,
    ) -> None:
        if attack not in ("random", "none") and attack not in list_strategies():
            raise ValueError(f"unknown attack {attack!r}; expected 'random', 'none' or one of "
                             f"{', '.join(list_strategies())}")
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected train, test, ood or all")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"unsupported render_mode {render_mode!r}")
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        self._config = {"category": category, "scenario": scenario, "backend": backend,
                        "attack": attack, "split": split, "max_steps": max_steps,
                        "reward": reward, "scenario_paths": scenario_paths,
                        "render_mode": render_mode, "trust_code": trust_code}
        self.trust_code = trust_code
        self.pool = self._select(category, scenario, split, scenario_paths, trust_code)
        self.backend = backend
        self.attack = attack
        self.max_steps_override = max_steps
        self.reward_fn = get_reward(reward)
        self.render_mode = render_mode
        self.observation_space = UnicodeText(MAX_TEXT)
        self.action_space = UnicodeText(MAX_TEXT)
        self.all_tools: ToolRegistry = standard_tools()
        self.sandbox: Sandbox | None = None
        self._sandbox_image = "base"
        self._faker: Any = None
        self._episode: Episode | None = None

    @staticmethod
    def _select(category: str, scenario: str | None, split: str,
                paths: Sequence[str | Path] | None,
                trust_code: bool = False) -> list[ScenarioVariant]:
        if scenario is not None:
            return find_variant(scenario, paths, trust_code=trust_code)
        variants = load_library(paths, trust_code=trust_code)
        chosen = [v for v in variants
                  if (category == "all" or v.category == category)
                  and (split == "all" or v.split == split)]
        if not chosen:
            raise ScenarioError(empty_selection_message(category, split, variants))
        return chosen

    # -- gymnasium API -----------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        given = dict(options) if options is not None else None
        options = options or {}
        variant = self._pick_variant(options.get("scenario"))
        attack = self._pick_attack(variant, options.get("attack"))
        episode_seed = int(self.np_random.integers(2**31 - 1))
        self._episode = self._start(variant, attack, episode_seed, seed, given)
        return self._episode.first_observation, self._episode.info()

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._episode is None:
            raise RuntimeError("call reset() before step()")
        return self._episode.step(action)

    def finish(self, termination: Termination = "max_steps") -> dict[str, Any]:
        """End the current episode now, judged as it stands; return its final ``info``.

        For callers that stop an episode for a reason of their own (a model's context is
        full, a wrapper's step limit). Raises ``RuntimeError`` before ``reset``.
        """
        if self._episode is None:
            raise RuntimeError("call reset() before finish()")
        return self._episode.finish(termination)

    def render(self) -> str | None:
        if self._episode is None:
            return None
        lines = [f"[{m['role']}] {m.get('content') or ''}" for m in self._episode.messages]
        return "\n".join(lines)

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None

    # -- episodes --------------------------------------------------------------------
    def _start(self, variant: ScenarioVariant, attack: str | None, episode_seed: int,
               reset_seed: int | None, options: dict[str, Any] | None) -> Episode:
        if self._faker is None:
            from faker import Faker

            self._faker = Faker("en_US")
        resolved = resolve(variant, episode_seed, faker=self._faker)
        image = resolved.spec.sandbox_image if self.backend == "docker" else "base"
        if self.sandbox is not None and image != self._sandbox_image:
            self.sandbox.close()  # the scenario needs another image variant
            self.sandbox = None
        if self._episode is not None and self._episode.infra_error is not None:
            self._discard_sandbox()  # it failed (hung, full, broken): never reuse it
        kwargs = {"variant": image} if self.backend == "docker" else {}
        if self.sandbox is None:
            self.sandbox = make_sandbox(self.backend, **kwargs)
            self._sandbox_image = image
        unknown = [name for name in resolved.spec.tools if name not in self.all_tools]
        if unknown:
            raise ScenarioError(f"unknown tool(s) {unknown}; available: "
                                f"{', '.join(self.all_tools.names())}",
                                file=variant.source, field="tools")
        max_steps = self.max_steps_override or resolved.spec.max_steps or DEFAULT_MAX_STEPS
        limit = self.spec.max_episode_steps if self.spec is not None else None
        if limit is not None:
            max_steps = min(max_steps, int(limit))
        def build() -> Episode:
            assert self.sandbox is not None
            return Episode(resolved, sandbox=self.sandbox,
                           tools=offered_tools(self.all_tools, list(resolved.spec.tools)),
                           attack=attack, episode_seed=episode_seed, max_steps=max_steps,
                           reward_fn=self.reward_fn, reset_seed=reset_seed,
                           reset_options=options)

        try:
            return build()
        except SandboxError:
            # A sandbox that cannot be set up is replaced once; a second failure is real.
            self._discard_sandbox()
            self.sandbox = make_sandbox(self.backend, **kwargs)
            return build()

    def _discard_sandbox(self) -> None:
        """Drop the current sandbox; closing a broken one may fail, which changes nothing."""
        sandbox, self.sandbox = self.sandbox, None
        if sandbox is not None:
            with contextlib.suppress(Exception):  # it is being thrown away anyway
                sandbox.close()

    def _pick_variant(self, wanted: str | None) -> ScenarioVariant:
        if wanted is not None:
            for variant in self.pool:
                if variant.id == wanted:
                    return variant
            return find_variant(wanted, self._config["scenario_paths"],
                                trust_code=self.trust_code)[0]
        return self.pool[int(self.np_random.integers(len(self.pool)))]

    def _pick_attack(self, variant: ScenarioVariant, wanted: str | None) -> str | None:
        injection = variant.spec.injection
        choice = wanted or self.attack
        if injection is None or choice == "none":
            return None
        allowed = list_strategies() if injection.strategies == "all" else injection.strategies
        if choice == "random":
            return allowed[int(self.np_random.integers(len(allowed)))]
        get_strategy(choice)
        return choice

    @property
    def episode(self) -> Episode | None:
        """The current episode's state machine (``None`` before the first ``reset``)."""
        return self._episode

    @property
    def current_scenario(self) -> ResolvedScenario | None:
        return self._episode.scenario if self._episode is not None else None

    def trajectory(self) -> Trajectory:
        """The current episode's record (DESIGN §3; final once the episode ended)."""
        if self._episode is None:
            raise RuntimeError("no episode yet")
        return self._episode.trajectory()

    # -- copying -----------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        episode = self._episode
        replay = None
        if episode is not None:
            replay = {"scenario_id": episode.scenario.variant.id, "attack": episode.attack,
                      "episode_seed": episode.seed, "reset_seed": episode.reset_seed,
                      "reset_options": episode.reset_options, "actions": list(episode.actions),
                      "finished": episode.outcome.termination
                      if episode.done and episode.outcome is not None else None}
        return {"config": dict(self._config), "np_random": self._np_random, "replay": replay,
                "spec": self.spec}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["config"])  # type: ignore[misc]
        self.spec = state["spec"]
        self._np_random = state["np_random"]
        replay = state["replay"]
        if replay is None:
            return
        variant = self._pick_variant(replay["scenario_id"])
        self._episode = self._start(variant, replay["attack"], replay["episode_seed"],
                                    replay["reset_seed"], replay["reset_options"])
        for action in replay["actions"]:
            self._episode.step(action)
        if replay["finished"] is not None and not self._episode.done:
            self._episode.finish(replay["finished"])
