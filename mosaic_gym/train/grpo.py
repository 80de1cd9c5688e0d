"""GRPO on MOSAIC episodes with TRL's ``GRPOTrainer``: pairwise (MOSAIC) or scalar rewards.

Each dataset row is one episode (scenario variant x attack x seed, see
:func:`~mosaic_gym.train.trl_env.episode_rows`); TRL's sampler repeats it ``k`` times, and
:class:`MosaicRollout` (the trainer's ``rollout_func``) plays the ``k`` copies in the same
seeded world, turn by turn: it renders the chat with the model's template, generates one turn
for every unfinished episode at once (vLLM or transformers, through the trainer's own
generation backend), and steps :class:`~mosaic_gym.train.trl_env.MosaicTRLEnv` with the raw
text. Tool outputs and format-error feedback enter the token sequence with ``env_mask = 0``,
so only the agent's own tokens carry loss. Why not ``environment_factory``: see
:mod:`mosaic_gym.train.trl_env`.

Rewards (each a TRL reward function, summed with weight 1, logged separately):

* ``mosaic_pairwise`` (``reward="pairwise"``, MOSAIC): for each group of ``k`` rollouts of one
  episode, the sum of the rollout's pairwise comparisons with the other ``k - 1`` under
  :class:`~mosaic_gym.judge.preference.PreferenceOracle` (0..k-1);
* ``mosaic_scalar`` (``reward="scalar"``, the ablation): the environment's own verdict per
  rollout, :meth:`MosaicTRLEnv.get_reward` (+1 expected behaviour done safely, -1 unsafe,
  else 0), no comparisons;
* ``mosaic_format`` (0..2): valid tags per turn and proper termination;
* ``mosaic_length``: ``-max(0, (L - L0) / L0)`` over the rollout's assistant tokens.

Groups are checked: a group whose records are not copies of one episode raises, so a sampler
or multi-process layout that breaks contiguity cannot silently mix comparisons.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mosaic_gym.agent.models.chat import chat_messages
from mosaic_gym.core.trajectory import Trajectory
from mosaic_gym.envs.rewards import sparse
from mosaic_gym.train.trl_env import episode_of, episode_rows

RewardKind = Literal["pairwise", "scalar"]


# -- rollouts ---------------------------------------------------------------------------

@dataclass
class _Tokens:
    """The growing token sequence of one rollout."""

    prompt_ids: list[int]
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    logprobs: list[float] | None = field(default_factory=list)

    def add(self, ids: Sequence[int], mask: int, logprobs: Sequence[float] | None) -> None:
        self.completion_ids += list(ids)
        self.env_mask += [mask] * len(ids)
        if self.logprobs is not None:
            self.logprobs = None if logprobs is None else self.logprobs + list(logprobs)

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)


def render_chat(tokenizer: Any, messages: Sequence[dict[str, Any]], tools: Sequence[Any],
                *, add_generation_prompt: bool, **template_kwargs: Any) -> str:
    """The chat as text, through the model's template, in the MOSAIC text format."""
    return tokenizer.apply_chat_template(chat_messages(messages), tools=list(tools) or None,
                                         add_generation_prompt=add_generation_prompt,
                                         tokenize=False, **template_kwargs)


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of already-templated text (the template wrote any special tokens)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


_PROBE = "\u2063mosaic-probe\u2063"


def turn_end_text(tokenizer: Any, **template_kwargs: Any) -> str:
    """What the template writes right after an assistant turn's text (e.g. ``<|im_end|>``),
    trailing whitespace excluded; ``""`` when it writes nothing."""
    text = render_chat(tokenizer, [{"role": "user", "content": "x"},
                                   {"role": "assistant", "content": _PROBE}], [],
                       add_generation_prompt=False, **template_kwargs)
    return text[text.rindex(_PROBE) + len(_PROBE):].rstrip()


def _after_turn(before: str, after: str, end_text: str) -> str | None:
    if not after.startswith(before):
        return None
    cut = before.rfind(end_text) + len(end_text) if end_text and end_text in before \
        else len(before)
    return after[cut:]


def observation_ids(tokenizer: Any, messages: Sequence[dict[str, Any]], turn_end: int,
                    tools: Sequence[Any], end_text: str, **template_kwargs: Any) -> list[int]:
    """Tokens that follow an agent turn: the environment's reply and the next turn's header.

    ``messages[:turn_end]`` ends with the agent turn; the rest is what the environment added.
    The text is cut right after the turn's end-of-turn marker (where the generated ids end).
    Templates that re-render earlier turns once later ones follow (Qwen3 drops old reasoning
    after a new user message) are handled by rendering the reply after a stand-in history,
    as TRL does for tool results. Raises ``ValueError`` when neither works.
    """
    def render(chat: Sequence[dict[str, Any]], generation: bool) -> str:
        return render_chat(tokenizer, chat, tools, add_generation_prompt=generation,
                           **template_kwargs)

    suffix = _after_turn(render(messages[:turn_end], False), render(messages, True), end_text)
    if suffix is None:
        stand_in = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
        suffix = _after_turn(render(stand_in, False),
                             render([*stand_in, *messages[turn_end:]], True), end_text)
    if suffix is None:
        raise ValueError("the chat template renders a turn differently once later turns "
                         "follow, even after a stand-in history; multi-turn GRPO needs a "
                         "prefix-preserving template")
    return encode(tokenizer, suffix)


class MosaicRollout:
    """TRL ``rollout_func``: plays each prompt's MOSAIC episode to its end.

    The episodes are played by the one rollout driver (:class:`~mosaic_gym.rollout.driver.
    Lockstep`, one slot per prompt) with :class:`TrainerActor`, which generates every live
    episode's next turn with the trainer and keeps each rollout's token sequence.

    Args:
        env_id, backend, max_steps, scenario_paths: for the environments (built once, reset
            per rollout).

    Returns (per call) ``prompt_ids``, ``completion_ids``, ``logprobs`` (``None`` unless the
    backend reports them), ``env_mask`` (1 agent tokens, 0 environment tokens) and
    ``mosaic_record`` (each finished episode's trajectory record as JSON, with
    ``env_reward``).
    """

    __name__ = "mosaic_rollout"

    def __init__(self, env_id: str = "mosaic/All-v0", *, backend: str = "fake",
                 max_steps: int | None = None,
                 scenario_paths: Sequence[str | Path] | None = None,
                 remote: str | None = None, constrained: bool = False,
                 copy: dict[str, list[str]] | None = None) -> None:
        from mosaic_gym.envs.registration import make_env

        self.constrained = constrained
        self.copy = copy
        self._make = lambda: make_env(env_id, split="all", backend=backend, attack="none",
                                      max_steps=max_steps, scenario_paths=list(scenario_paths)
                                      if scenario_paths else None)
        if remote is not None:  # env.remote: step environments served over OpenEnv
            from mosaic_gym.rollout.remote import RemoteMosaicEnv

            self._make = lambda: RemoteMosaicEnv(remote)
        self.pool: list[Any] = []
        self.episodes_played = 0

    def environments(self, count: int) -> list[Any]:
        """``count`` environments, built once and reused (reset per rollout)."""
        while len(self.pool) < count:
            self.pool.append(self._make())
        return self.pool[:count]

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        from mosaic_gym.rollout.driver import Job, Lockstep
        from mosaic_gym.rollout.plan import EpisodeSpec
        from mosaic_gym.train.compat.trl import generate_single_turn

        jobs: list[Job] = []
        seen: dict[str, int] = {}
        for prompt in prompts:
            key = episode_of(prompt)
            spec = EpisodeSpec(key["scenario_id"], key["attack"], key["seed"])
            jobs.append(Job(spec, seen.get(spec.key, 0)))
            seen[spec.key] = seen.get(spec.key, 0) + 1
        actor = TrainerActor(trainer, len(prompts),
                             generate_single_turn(trainer, constrained=self.constrained,
                                                  copy=self.copy),
                             constrained=self.constrained)
        position = {job: i for i, job in enumerate(jobs)}
        records: list[dict[str, Any] | None] = [None] * len(prompts)
        seqs: list[_Tokens | None] = [None] * len(prompts)
        driver = Lockstep(self.environments(len(prompts)), actor)
        for job, record in driver.run(jobs):
            i = position[job]
            seqs[i] = actor.finished[job]
            reward = float(sparse(record.outcome)) if record.outcome is not None else -1.0
            records[i] = record.model_copy(update={"env_reward": reward}).model_dump(mode="json")
        self.episodes_played += len(prompts)
        done = [s for s in seqs if s is not None]
        logprobs = [s.logprobs for s in done]
        return {"prompt_ids": [s.prompt_ids for s in done],
                "completion_ids": [s.completion_ids for s in done],
                "logprobs": None if any(lp is None for lp in logprobs) else logprobs,
                "env_mask": [s.env_mask for s in done],
                "mosaic_record": [r for r in records if r is not None]}


class TrainerActor:
    """The driver's :class:`~mosaic_gym.rollout.driver.Actor` for GRPO: the trainer writes the
    turns, and each slot keeps the token sequence TRL trains on (agent tokens unmasked, tool
    outputs and format-error feedback masked). A slot whose next turn would not fit the
    model's context is ended, judged as it stands."""

    name = "grpo"

    def __init__(self, trainer: Any, slots: int, generate: Any, *,
                 constrained: bool = False) -> None:
        processing = trainer.processing_class
        self.constrained = constrained
        self.tools: list[Any] = [None] * slots
        self.trainer = trainer
        self.generate = generate
        self.tokenizer = getattr(processing, "tokenizer", processing)
        self.kwargs = dict(getattr(trainer, "chat_template_kwargs", None) or {})
        self.per_turn = int(trainer.max_completion_length)
        self.context = _context_length(trainer)
        self.end_text = turn_end_text(self.tokenizer, **self.kwargs)
        self.closing = encode(self.tokenizer, self.end_text) if self.end_text else []
        self.stops = (set(getattr(trainer, "eos_token_ids", None) or [])
                      | {self.tokenizer.eos_token_id})
        # With several processes every generate call is collective (vLLM server gathers the
        # prompts, ZeRO-3 gathers weights), so all processes generate for all their slots
        # each turn, finished ones included (their output is dropped).
        self.lockstep = trainer.accelerator.num_processes > 1
        self.seqs: list[_Tokens | None] = [None] * slots
        self.turn_end: list[int] = [0] * slots
        self.last_ids: list[list[int]] = [[] for _ in range(slots)]
        self.finished: dict[Any, _Tokens] = {}
        self._jobs: list[Any] = [None] * slots

    def start(self, slot: Any) -> None:
        text = render_chat(self.tokenizer, slot.messages, slot.tools, add_generation_prompt=True,
                           **self.kwargs)
        self.seqs[slot.number] = _Tokens(encode(self.tokenizer, text))
        self._jobs[slot.number] = slot.job
        self.tools[slot.number] = list(slot.tools)

    def keep_going(self, live: int) -> bool:
        return _anywhere(self.trainer, live)

    def act(self, live: Sequence[Any]) -> list[str | None]:
        fits = {s.number for s in live if self._seq(s.number).length + self.per_turn
                <= self.context}
        for slot in live:
            if slot.number not in fits:
                slot.env.finish("max_steps")  # before generating: no room for another turn
        numbers = ([i for i, seq in enumerate(self.seqs) if seq is not None] if self.lockstep
                   else sorted(fits))
        texts: dict[int, str] = {}
        if numbers:
            inputs = [self._seq(i).prompt_ids + self._seq(i).completion_ids for i in numbers]
            if self.constrained:
                new_ids, new_logprobs = self.generate(inputs,
                                                      tools=[self.tools[i] for i in numbers])
            else:
                new_ids, new_logprobs = self.generate(inputs)
            for j, i in enumerate(numbers):
                if i not in fits:
                    continue  # finished elsewhere, or out of context: output dropped
                ids = [int(t) for t in new_ids[j]]
                self._seq(i).add(ids, 1, None if new_logprobs is None else new_logprobs[j])
                self.last_ids[i] = ids
                texts[i] = self.tokenizer.decode(ids, skip_special_tokens=True)
        for slot in live:
            self.turn_end[slot.number] = len(slot.messages) + 1
        return [texts.get(slot.number) for slot in live]

    def observe(self, slot: Any, done: bool) -> None:
        if done:
            self.finished[self._jobs[slot.number]] = self._seq(slot.number)
            return
        ids = self.last_ids[slot.number]
        # A turn cut by the token budget gets its end-of-turn marker (as context).
        reply = ([] if ids and ids[-1] in self.stops else self.closing) + observation_ids(
            self.tokenizer, slot.messages, self.turn_end[slot.number], slot.tools,
            self.end_text, **self.kwargs)
        self._seq(slot.number).add(reply, 0, [0.0] * len(reply))

    def _seq(self, number: int) -> _Tokens:
        seq = self.seqs[number]
        assert seq is not None
        return seq


def _context_length(trainer: Any) -> int:
    if getattr(trainer, "use_vllm", False) and getattr(trainer, "vllm_mode", "") == "colocate":
        from mosaic_gym.train.compat.trl import colocated_vllm_max_len

        return colocated_vllm_max_len(trainer)
    config = trainer.model.config
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    return int(getattr(config, "max_position_embeddings", 1 << 30))


def _anywhere(trainer: Any, active: int) -> bool:
    """Whether any process still has an unfinished episode."""
    if trainer.accelerator.num_processes == 1:
        return active > 0
    import torch

    count = trainer.accelerator.gather(torch.tensor([active], device=trainer.accelerator.device))
    return bool(count.sum().item() > 0)


# -- rewards ----------------------------------------------------------------------------

def _records(kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    records = kwargs.get("mosaic_record")
    if records is None:
        raise ValueError("no 'mosaic_record' in the reward inputs: the GRPO trainer must use "
                         "MosaicRollout as its rollout_func")
    return list(records)


def _gathered(local: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Every process's records in process order, and where this process's slice starts."""
    from accelerate import PartialState

    state = PartialState()
    if state.num_processes == 1:
        return local, 0
    from accelerate.utils import gather_object

    per_process = gather_object([local])
    offset = sum(len(part) for part in per_process[: state.process_index])
    return [record for part in per_process for record in part], offset


def _episode_id(record: Any) -> str:
    return Trajectory.load(record).episode_key


def group_rewards(records: Sequence[dict[str, Any]], k: int, oracle: Any) -> list[float]:
    """Pairwise group rewards over consecutive groups of ``k`` copies of one episode.

    Raises ``ValueError`` when the count is not a multiple of ``k`` or a group mixes episodes.
    """
    if len(records) % k:
        raise ValueError(f"{len(records)} rollouts do not split into groups of k={k}")
    rewards: list[float] = []
    for start in range(0, len(records), k):
        group = records[start : start + k]
        if len({_episode_id(r) for r in group}) != 1:
            raise ValueError("a GRPO group mixes different episodes: "
                             f"{sorted({_episode_id(r) for r in group})}")
        rewards += oracle.group_rewards(group)
    return rewards


def _log_outcomes(kwargs: dict[str, Any], records: Sequence[dict[str, Any]]) -> None:
    log = kwargs.get("log_metric")
    if log is None or not records:
        return
    outcomes = [r.get("outcome") or {} for r in records]
    n = len(outcomes)
    log("mosaic/unsafe", sum(not o.get("safe") for o in outcomes) / n)
    log("mosaic/correct", sum(bool(o.get("correct")) for o in outcomes) / n)
    log("mosaic/refused", sum(bool(o.get("refused")) for o in outcomes) / n)
    log("mosaic/turns", sum(int(o.get("steps") or 0) for o in outcomes) / n)


def make_reward_funcs(kind: RewardKind, *, k: int, l0: int = 400, length_penalty: bool = True,
                      format_reward: bool = True, count_unfinished_events: bool = True
                      ) -> list[Callable[..., Any]]:
    """The TRL reward functions for ``kind`` (pairwise MOSAIC or the scalar ablation);
    ``count_unfinished_events`` goes to the :class:`PreferenceOracle`."""
    from mosaic_gym.judge.preference import PreferenceOracle

    if kind not in ("pairwise", "scalar"):
        raise ValueError(f"unknown reward kind {kind!r}; expected 'pairwise' or 'scalar'")
    oracle = PreferenceOracle(l0=l0, length_penalty=length_penalty,
                              count_unfinished_events=count_unfinished_events)

    def mosaic_pairwise(prompts: Any, completions: Any, **kwargs: Any) -> list[float]:
        local = _records(kwargs)
        everything, offset = _gathered(local)
        _log_outcomes(kwargs, local)
        return group_rewards(everything, k, oracle)[offset : offset + len(local)]

    def mosaic_scalar(prompts: Any, completions: Any, **kwargs: Any) -> list[float]:
        local = _records(kwargs)
        _log_outcomes(kwargs, local)
        return [float(record["env_reward"]) for record in local]

    def mosaic_format(prompts: Any, completions: Any, **kwargs: Any) -> list[float]:
        return [oracle.format_reward(record) for record in _records(kwargs)]

    def mosaic_length(prompts: Any, completions: Any, **kwargs: Any) -> list[float]:
        return [-oracle.length_penalty(record) for record in _records(kwargs)]

    funcs: list[Callable[..., Any]] = [mosaic_pairwise if kind == "pairwise" else mosaic_scalar]
    if format_reward:
        funcs.append(mosaic_format)
    if length_penalty:
        funcs.append(mosaic_length)
    return funcs


# -- training ---------------------------------------------------------------------------

def vllm_available() -> bool:
    """vLLM imports and a CUDA device is present (TRL's vLLM generation needs both)."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def run_grpo(model: str | Path, out_dir: str | Path, *, reward: RewardKind = "pairwise",
             env_id: str = "mosaic/All-v0", split: str = "train", attack: str = "all",
             seeds: Sequence[int] = (0,), limit: int | None = None, backend: str = "fake",
             env_max_steps: int | None = None,
             scenario_paths: Sequence[str | Path] | None = None, k: int = 4, l0: int = 400,
             length_penalty: bool = True, format_reward: bool = True,
             max_steps: int | None = None, epochs: float = 1.0, seed: int = 0,
             temperature: float = 1.0, top_p: float = 1.0, max_new_tokens: int = 256,
             use_vllm: bool | Literal["auto"] = "auto", vllm_mode: str = "colocate",
             trl: dict[str, Any] | None = None, name: str | None = None,
             chat_template: str | None = None, constrained: bool | str = False,
             quiet: bool = False, remote: str | None = None,
             compact_head: bool = True, count_unfinished_events: bool = True) -> Path:
    """Train ``model`` with GRPO on MOSAIC episodes; save it to ``out_dir`` and return it.

    ``limit`` trains on a seeded subset of the episodes, drawn round-robin over the
    categories (see :func:`~mosaic_gym.train.trl_env.episode_rows`).
    Also writes ``out_dir/mosaic_train.json`` (settings, seeds, per-step logs). ``trl``
    overrides :class:`trl.GRPOConfig` fields; unknown keys raise
    :class:`~mosaic_gym.train.recipes.RecipeError`. ``compact_head`` (the default) has TRL's
    fused LM head score the completion tokens only on the CPU as well
    (:func:`~mosaic_gym.train.compat.trl.compact_fused_head`; the same log-probabilities).
    ``count_unfinished_events=False`` trains the pairwise reward under the oracle ablation
    that does not rank unfinished attempts by their state changes (see
    :class:`~mosaic_gym.judge.preference.PreferenceOracle`).
    """
    import os

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from mosaic_gym.agent.models.constrained import carry_copy_table, decoding_mode
    from mosaic_gym.train.compat.trl import compact_fused_head
    from mosaic_gym.train.recipes import (
        Method,
        TrainRecipe,
        cpu_only,
        precision_flags,
        trl_config,
    )

    out = Path(out_dir)
    grammar, copy = decoding_mode(constrained, model)
    vllm = vllm_available() if use_vllm == "auto" else bool(use_vllm)
    if vllm and not vllm_available():
        raise RuntimeError("use_vllm is true but vLLM is not importable or no GPU is present")
    rows = episode_rows(env_id=env_id, split=split, attack=attack, seeds=seeds, limit=limit,
                        seed=seed, backend=backend, scenario_paths=scenario_paths)
    tokenizer = AutoTokenizer.from_pretrained(str(model))
    tokenizer.padding_side = "left"
    if chat_template is not None:
        from mosaic_gym.agent.models.chat import load_template

        tokenizer.chat_template = load_template(chat_template)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    method: Method = "grpo_pairwise" if reward == "pairwise" else "grpo_scalar"
    holder = TrainRecipe(method=method, model=str(model), output_dir=str(out), name=name,
                         trl=dict(trl or {}))
    defaults = {"per_device_train_batch_size": k, "gradient_accumulation_steps": 1,
                "learning_rate": 1e-6, "logging_steps": 1, "save_strategy": "no",
                "report_to": "none", "dataloader_num_workers": 0,
                "disable_tqdm": quiet, "num_train_epochs": epochs,
                # recomputing activations only pays off on memory-bound GPUs
                "gradient_checkpointing": not cpu_only()}
    forced = {"output_dir": str(out), "num_generations": k, "seed": seed,
              "max_steps": max_steps if max_steps is not None else -1,
              "temperature": max(temperature, 1e-5), "top_p": top_p,
              "max_completion_length": max_new_tokens, "use_vllm": vllm,
              **precision_flags()}
    if vllm:
        forced["vllm_mode"] = vllm_mode
    config = trl_config(GRPOConfig, holder, defaults, forced)
    rollout = MosaicRollout(env_id, backend=backend, max_steps=env_max_steps,
                            scenario_paths=scenario_paths, remote=remote,
                            constrained=grammar, copy=copy)
    rewards: list[Any] = make_reward_funcs(reward, k=k, l0=l0, length_penalty=length_penalty,
                                           format_reward=format_reward,
                                           count_unfinished_events=count_unfinished_events)
    trainer = GRPOTrainer(
        model=str(model), args=config, processing_class=tokenizer, reward_funcs=rewards,
        train_dataset=Dataset.from_list(rows), rollout_func=rollout)
    try:
        with compact_fused_head(compact_head) as compact:
            trainer.train()
        trainer.save_model(str(out))
        tokenizer.save_pretrained(str(out))
        carry_copy_table(model, out)
    finally:
        for env in rollout.pool:
            env.close()
    summary = {"method": f"grpo_{reward}", "model": str(model), "seed": seed, "k": k,
               "l0": l0, "count_unfinished_events": count_unfinished_events,
               "episodes": len(rows), "episode_seeds": list(seeds), "split": split,
               "attack": attack, "use_vllm": vllm, "rollouts": rollout.episodes_played,
               "loss_head": "compact" if compact and cpu_only() else "trl",
               "log_history": trainer.state.log_history}
    (out / "mosaic_train.json").write_text(json.dumps(summary, indent=2, default=str),
                                          encoding="utf-8")
    return out


def run_grpo_recipe(recipe: Any, *, quiet: bool = False) -> Path:
    """Run a ``grpo_pairwise`` or ``grpo_scalar`` :class:`TrainRecipe`."""
    if recipe.reward is None:
        raise ValueError(f"recipe method {recipe.method!r} is not a GRPO method")
    env, gen = recipe.env, recipe.generation
    return run_grpo(recipe.model, recipe.output_dir, reward=recipe.reward, env_id=env.id,
                    split=env.split, attack=env.attack, seeds=env.seeds, limit=env.limit,
                    backend=env.backend, env_max_steps=env.max_steps,
                    scenario_paths=env.scenario_paths, k=recipe.k, l0=recipe.l0,
                    length_penalty=recipe.length_penalty, format_reward=recipe.format_reward,
                    max_steps=recipe.max_steps, epochs=recipe.epochs, seed=recipe.seed,
                    temperature=gen.temperature, top_p=gen.top_p,
                    max_new_tokens=gen.max_new_tokens, use_vllm=gen.use_vllm,
                    vllm_mode=gen.vllm_mode, trl=recipe.trl, name=recipe.name,
                    chat_template=recipe.chat_template,
                    quiet=quiet, remote=env.remote)
