"""MOSAIC episodes for TRL's GRPO trainer.

:class:`MosaicTRLEnv` wraps one :class:`~mosaic_gym.envs.mosaic_env.MosaicEnv` and has the
shape TRL 1.16 expects of an environment (``trl.trainer.grpo_trainer._SupportsReset``):
``reset(**row)`` takes the dataset row of the episode and returns ``None`` (the row's prompt
is already the episode's opening chat), and ``get_reward()`` scores the finished episode from
the environment's own verdict. The environment owns the tools (the scenario's tool set, run
on its world) and the ground truth the rewards are read from (``trajectory()``).

Why it is driven by a ``rollout_func`` and not passed as ``environment_factory``
------------------------------------------------------------------------------------
TRL's ``environment_factory`` is built for *native* tool calling: the trainer requires a
chat template that renders structured ``tool_calls`` (``supports_tool_calling``), parses each
generated turn with the tokenizer's response parser, and calls the environment's public
methods with the parsed arguments. The MOSAIC action is a piece of *text*
(``<think>…</think>[<safety_thoughts>…</safety_thoughts>]`` then a ``<tool_call>`` JSON, a
refusal or a final answer) that the environment itself must read:

* the plan and the optional safety check never reach a tool method, so the environment could
  not record whether the check was made, its token share, or the turn's format score;
* a malformed turn must come back to the agent as a format error (the episode goes on), not
  end the rollout as "no tool call";
* each scenario offers its own tool subset, whereas ``environment_factory`` fixes the tools
  per environment class, and the tiny model's template renders the raw text (it is rejected
  by ``supports_tool_calling``).

So :mod:`mosaic_gym.train.grpo` passes ``rollout_func=`` and steps each episode with the raw
generated text (:meth:`MosaicTRLEnv.act`), returning an ``env_mask`` so the tokens of tool
outputs (and of format-error feedback) are masked from the loss, as TRL does for its own
tool loop. Rewards are computed from the trajectory records of the finished episodes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mosaic_gym.agent.models.chat import chat_messages
from mosaic_gym.core.trajectory import Trajectory
from mosaic_gym.envs.rewards import sparse

EPISODE_KEY = "mosaic_episode"
"""Key of the first prompt message that carries the episode identity (JSON) in GRPO datasets.

Chat templates ignore unknown message keys, so the model never sees it; the rollout reads
it to reset the right episode, since TRL's ``rollout_func`` only receives the prompts."""


class MosaicTRLEnv:
    """One MOSAIC episode at a time, stepped with raw MOSAIC text.

    Args:
        env_id: a ``mosaic/*`` id; its category filters nothing here (episodes are named by
            the dataset row), but its registration kwargs apply.
        backend: ``fake`` or ``docker``.
        max_steps: agent turns before the episode is truncated (default: the scenario's).
        scenario_paths: replace the built-in scenario library.
    """

    def __init__(self, env_id: str = "mosaic/All-v0", *, backend: str = "fake",
                 max_steps: int | None = None,
                 scenario_paths: Sequence[str | Path] | None = None) -> None:
        from mosaic_gym.envs.registration import make_env

        self.env_id = env_id
        self._wrapper = make_env(env_id, split="all", backend=backend, attack="none",
                                 max_steps=max_steps,
                                 scenario_paths=list(scenario_paths) if scenario_paths else None)
        self.env = self._wrapper.unwrapped
        self._info: dict[str, Any] | None = None
        self._done = False
        self._reward: float | None = None
        self.key: dict[str, Any] | None = None

    # -- TRL environment protocol ------------------------------------------------------
    def reset(self, *, scenario_id: str, attack: str | None = None, seed: int = 0,
              **_row: Any) -> None:
        """Start the episode named by a dataset row (other row fields are ignored).

        Returns ``None``: the row's prompt already holds the opening chat.
        """
        options = {"scenario": scenario_id, "attack": attack or "none"}
        _observation, info = self.env.reset(seed=int(seed), options=options)
        self._info, self._done, self._reward = info, False, None
        self.key = {"scenario_id": scenario_id, "attack": attack, "seed": int(seed)}
        return None

    def get_reward(self) -> float:
        """The environment's scalar verdict: +1 expected behaviour done safely, -1 unsafe,
        0 otherwise (the ``sparse`` scheme). Raises ``RuntimeError`` before the end."""
        if not self._done:
            raise RuntimeError("get_reward() before the episode ended")
        outcome = self.env.episode.outcome
        return float(sparse(outcome)) if outcome is not None else -1.0

    # -- stepping ---------------------------------------------------------------------
    @property
    def messages(self) -> list[dict[str, Any]]:
        """The chat so far (OpenAI format, as the environment records it)."""
        self._require_episode()
        return list(self._info["messages"])  # type: ignore[index]

    @property
    def tools(self) -> list[dict[str, Any]]:
        """JSON schemas of the tools this scenario offers."""
        self._require_episode()
        return list(self._info["tools"])  # type: ignore[index]

    @property
    def done(self) -> bool:
        return self._done

    def act(self, text: str) -> bool:
        """Play one agent turn (raw MOSAIC text); return whether the episode ended."""
        self._require_episode()
        if self._done:
            raise RuntimeError("the episode is over; reset() first")
        _obs, reward, terminated, truncated, info = self.env.step(text)
        self._info = info
        if terminated or truncated:
            self._done, self._reward = True, float(reward)
        return self._done

    def truncate(self) -> None:
        """End the episode now, judged as it stands (termination ``max_steps``).

        Used when the model's context cannot hold another turn (``MosaicEnv.finish``).
        """
        self._require_episode()
        if self._done:
            return
        self._info = self.env.finish("max_steps")
        outcome = self.env.episode.outcome if self.env.episode is not None else None
        self._done = True
        self._reward = float(self.env.reward_fn(outcome)) if outcome is not None else -1.0

    def trajectory(self) -> Trajectory:
        """The episode's record (``MosaicEnv.trajectory()``; it carries its reset identity)."""
        return self.env.trajectory()

    def close(self) -> None:
        self._wrapper.close()

    def _require_episode(self) -> None:
        if self._info is None:
            raise RuntimeError("call reset() first")


def episode_rows(*, env_id: str = "mosaic/All-v0", split: str = "train", attack: str = "all",
                 seeds: Sequence[int] = (0,), limit: int | None = None, seed: int = 0,
                 backend: str = "fake",
                 scenario_paths: Sequence[str | Path] | None = None) -> list[dict[str, Any]]:
    """One dataset row per episode (variant x attack x seed) of ``env_id``'s ``split``.

    Each row: ``prompt`` (the opening system + user messages, the first one carrying the
    episode identity under :data:`EPISODE_KEY`), ``scenario_id``, ``attack`` (``""`` for
    none) and ``seed``. With ``limit``, a seeded subset of that size drawn round-robin over
    the categories, in plan order (:func:`~mosaic_gym.rollout.plan.episode_subset`).
    Raises ``ValueError`` when the selection is empty.
    """
    from mosaic_gym.envs.registration import make_env
    from mosaic_gym.rollout.plan import episode_plan, episode_subset

    wrapper = make_env(env_id, split=split, backend=backend, attack="none",
                       scenario_paths=list(scenario_paths) if scenario_paths else None)
    env = wrapper.unwrapped
    try:
        plan = episode_subset(episode_plan(env.pool, list(seeds), attack=attack), limit, seed)
        rows = []
        for spec in plan:
            _obs, info = env.reset(seed=spec.seed, options={"scenario": spec.scenario_id,
                                                             "attack": spec.attack or "none"})
            key = {"scenario_id": spec.scenario_id, "attack": spec.attack, "seed": spec.seed}
            prompt = chat_messages(info["messages"])
            prompt[0] = {**prompt[0], EPISODE_KEY: json.dumps(key)}
            rows.append({"prompt": prompt, "scenario_id": spec.scenario_id,
                         "attack": spec.attack or "", "seed": spec.seed})
    finally:
        wrapper.close()
    if not rows:
        raise ValueError(f"no episodes in {env_id} split={split!r} attack={attack!r}")
    return rows


def episode_of(prompt: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The episode identity carried by a prompt built by :func:`episode_rows`.

    Raises ``ValueError`` for a prompt without it (a dataset not built for MOSAIC GRPO).
    """
    raw = prompt[0].get(EPISODE_KEY) if prompt else None
    if not raw:
        raise ValueError(f"the prompt carries no {EPISODE_KEY!r}: build the GRPO dataset with "
                         "mosaic_gym.train.trl_env.episode_rows")
    key = json.loads(raw)
    return {"scenario_id": key["scenario_id"], "attack": key.get("attack"),
            "seed": int(key.get("seed", 0))}
