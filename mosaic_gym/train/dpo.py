"""DPO on oracle-ranked pairs of the model's own rollouts (TRL ``DPOTrainer``).

1. **Collect**: the model plays groups of ``k`` rollouts of the same episodes
   (:class:`~mosaic_gym.rollout.collect.LockstepCollector` with a sampling
   :class:`~mosaic_gym.agent.models.transformers_policy.TransformersPolicy`), written as a
   ``mosaic-collect/1`` JSONL file (``<out>/groups.jsonl``).
2. **Pair**: :func:`~mosaic_gym.train.pairs.build_dpo_pairs` turns each group into
   conversational preference rows ``{"prompt", "chosen", "rejected", "tools"}`` ranked by the
   :class:`~mosaic_gym.judge.preference.PreferenceOracle`.
3. **Train**: :class:`MaskedDPOTrainer`, a ``DPOTrainer`` whose completions may span several
   turns. TRL scores every completion token, tool outputs included; here each row is
   tokenized with a loss mask so only the agent's own turns (its text and end-of-turn
   token) count in the DPO log-probabilities. Tool results, format-error feedback and chat
   headers are context only.

CPU runs use fp32 (``bf16=False``); ``trl`` overrides reach ``DPOConfig``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mosaic_gym.agent.models.chat import chat_messages

LOSS_MASK_COLUMNS = ("chosen_loss_mask", "rejected_loss_mask")


# -- tokenization with a loss mask ----------------------------------------------------------

def _render(tokenizer: Any, messages: Sequence[Mapping[str, Any]], tools: Any,
            generation: bool) -> str:
    return tokenizer.apply_chat_template(chat_messages(messages), tools=tools or None,
                                         add_generation_prompt=generation, tokenize=False)


def tokenize_conversation(tokenizer: Any, prompt: Sequence[Mapping[str, Any]],
                          completion: Sequence[Mapping[str, Any]],
                          tools: Sequence[Mapping[str, Any]] | None
                          ) -> tuple[list[int], list[int], list[int]]:
    """``(prompt_ids, completion_ids, loss_mask)`` for a prompt and a multi-turn completion.

    ``loss_mask`` has one entry per completion token: 1 inside an assistant turn (from the
    first token after its header through its end-of-turn token), 0 for everything the
    environment or the template wrote. Needs a prefix-preserving chat template; raises
    ``ValueError`` otherwise or when the completion has no assistant turn.
    """
    if not any(m.get("role") == "assistant" for m in completion):
        raise ValueError("a completion needs at least one assistant turn")
    eos = tokenizer.eos_token or ""
    prompt_text = _render(tokenizer, prompt, tools, True)
    full = _render(tokenizer, [*prompt, *completion], tools, False)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(completion):
        if message.get("role") != "assistant":
            continue
        head = _render(tokenizer, [*prompt, *completion[:i]], tools, True)
        upto = _render(tokenizer, [*prompt, *completion[: i + 1]], tools, False)
        if not (full.startswith(head) and full.startswith(upto) and upto.startswith(head)):
            raise ValueError("the chat template is not prefix-preserving; cannot mask turns")
        end = upto.find(eos, len(head)) + len(eos) if eos and eos in upto[len(head):] \
            else len(upto)
        spans.append((len(head), end))
    if not full.startswith(prompt_text):
        raise ValueError("the chat template renders the prompt differently inside the chat")
    encoded = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(encoded["input_ids"]), list(encoded["offset_mapping"])
    cut = sum(1 for start, _ in offsets if start < len(prompt_text))
    mask = [int(any(lo <= start < hi for lo, hi in spans)) for start, _ in offsets[cut:]]
    return ids[:cut], ids[cut:], mask


def tokenize_pair(row: Mapping[str, Any], tokenizer: Any) -> dict[str, Any]:
    """Tokenize one preference row into ids and loss masks (shared prompt)."""
    tools = row.get("tools")
    tools = json.loads(tools) if isinstance(tools, str) else tools
    prompt_c, chosen, chosen_mask = tokenize_conversation(tokenizer, row["prompt"],
                                                          row["chosen"], tools)
    prompt_r, rejected, rejected_mask = tokenize_conversation(tokenizer, row["prompt"],
                                                              row["rejected"], tools)
    if prompt_c != prompt_r:
        raise ValueError("chosen and rejected tokenize to different prompts")
    return {"prompt_ids": prompt_c, "chosen_ids": chosen, "rejected_ids": rejected,
            "chosen_loss_mask": chosen_mask, "rejected_loss_mask": rejected_mask}


def _tokenize_or_flag(row: Mapping[str, Any], tokenizer: Any) -> dict[str, Any]:
    try:
        return {**tokenize_pair(row, tokenizer), "skip": False}
    except ValueError:
        return {"prompt_ids": [], "chosen_ids": [], "rejected_ids": [], "chosen_loss_mask": [],
                "rejected_loss_mask": [], "skip": True}


# -- TRL pieces -----------------------------------------------------------------------------

def _collator_class() -> type:
    from mosaic_gym.train.compat.trl import masked_preference_collator

    return masked_preference_collator()


def _trainer_class() -> type:
    from mosaic_gym.train.compat.trl import masked_dpo_trainer

    return masked_dpo_trainer(_tokenize_or_flag, LOSS_MASK_COLUMNS)


# -- collection and training ----------------------------------------------------------------

def collect_groups(model: str | Path, out: str | Path, *, env_id: str = "mosaic/All-v0",
                   split: str = "train", attack: str = "all", seeds: Sequence[int] = (0,),
                   limit: int | None = None, k: int = 4, backend: str = "fake",
                   max_steps: int | None = None, temperature: float = 1.0, top_p: float = 1.0,
                   max_new_tokens: int = 256, num_envs: int = 16, seed: int = 0,
                   chat_template: str | None = None, constrained: bool | str = False,
                   quiet: bool = False) -> Path:
    """Let ``model`` play ``k`` sampled rollouts of each episode; write the groups to ``out``.

    With ``limit``, a seeded subset of the episodes drawn round-robin over the categories
    (:func:`~mosaic_gym.rollout.plan.episode_subset`). The file is a collection file (see
    :mod:`mosaic_gym.rollout.collect`); an existing one of the same settings is resumed.
    """
    from rich.progress import track

    from mosaic_gym.agent.models.transformers_policy import TransformersPolicy
    from mosaic_gym.envs.registration import make_env
    from mosaic_gym.rollout.collect import FORMAT, RESUME_FIELDS, plan_groups
    from mosaic_gym.rollout.driver import play_groups
    from mosaic_gym.rollout.store import JsonlStore, group_row, now

    env_kwargs = {"split": split, "backend": backend, "attack": "none",
                  "max_steps": max_steps}
    probe = make_env(env_id, **env_kwargs)
    try:
        specs = plan_groups(probe, seeds, attack=attack, limit=limit, seed=seed)
    finally:
        probe.close()
    policy = TransformersPolicy(str(model), sampling={
        "temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens,
        "seed": seed}, batch_size=num_envs, template=chat_template,
        name=f"transformers:{model}", constrained=constrained)
    settings = {"format": FORMAT, "policy": policy.name, "env": env_id, "k": k,
                "split": split, "attack": attack, "backend": backend, "scenario": None,
                "seeds": list(seeds), "limit": limit, "created": now()}
    envs = [make_env(env_id, **env_kwargs) for _ in range(num_envs)]
    try:
        with JsonlStore(out, settings, key=lambda row: str(row.get("key")),
                        must_match=RESUME_FIELDS) as store:
            todo = [s for s in specs if s.key not in store.done]
            groups = play_groups(envs, policy, todo, k)
            for spec, rollouts in track(groups, total=len(todo), disable=quiet,
                                        description=f"collecting {k} rollouts x "
                                                    f"{len(todo)} episodes"):
                store.write(group_row(spec, rollouts))
    finally:
        for env in envs:
            env.close()
    return Path(out)


def preference_rows(groups_path: str | Path, *, l0: int = 400,
                    length_penalty: bool = True) -> list[dict[str, Any]]:
    """DPO rows from a collection file, ranked by the preference oracle."""
    from mosaic_gym.judge.preference import PreferenceOracle
    from mosaic_gym.rollout.collect import read_groups
    from mosaic_gym.train.pairs import build_dpo_pairs

    groups = list(read_groups(groups_path))
    oracle = PreferenceOracle(l0=l0, length_penalty=length_penalty)
    return list(build_dpo_pairs(groups, oracle))


def teacher_pair_rows(*, env_id: str = "mosaic/All-v0", split: str = "train",
                      attack: str = "all", seeds: Sequence[int] = (0,),
                      limit: int | None = None, seed: int = 0, l0: int = 400,
                      length_penalty: bool = True,
                      teachers: Sequence[str] = ("reference", "comply", "refuse"),
                      ) -> list[dict[str, Any]]:
    """Off-policy DPO rows from the scripted teachers: each episode is played once by every
    policy in ``teachers`` (the safe reference, the helpful-but-unsafe ``comply``, the
    blanket ``refuse``) and the group is ranked by the oracle like a group of samples.

    Used when the model's own samples give too few strict preferences (a young model whose
    samples all fail alike ties every group). The pairs say: complete benign tasks rather
    than refuse them, refuse harmful ones, ignore injections.
    """
    from mosaic_gym.agent.baselines import make_baseline
    from mosaic_gym.envs.registration import make_env
    from mosaic_gym.judge.preference import PreferenceOracle
    from mosaic_gym.rollout import play
    from mosaic_gym.rollout.collect import plan_groups
    from mosaic_gym.train.pairs import build_dpo_pairs

    env = make_env(env_id, split=split, attack="none")
    try:
        specs = plan_groups(env, seeds, attack=attack, limit=limit, seed=seed)
        groups = [[play(env.unwrapped, make_baseline(name, seed=spec.seed), spec)
                   for name in teachers] for spec in specs]
    finally:
        env.close()
    oracle = PreferenceOracle(l0=l0, length_penalty=length_penalty)
    rows = build_dpo_pairs(groups, oracle)
    for row in rows:
        row["source"] = "teachers"
    return rows


def train_dpo(model: str | Path, rows: Sequence[Mapping[str, Any]], out_dir: str | Path, *,
              seed: int = 0, max_steps: int | None = None, epochs: float = 1.0,
              trl: Mapping[str, Any] | None = None, name: str | None = None,
              chat_template: str | None = None, quiet: bool = False,
              compact_head: bool = True) -> Path:
    """Run :class:`MaskedDPOTrainer` on preference ``rows``; save the model to ``out_dir``.

    ``compact_head`` (the default) has TRL's fused LM head score the completion tokens only
    on the CPU as well (:func:`~mosaic_gym.train.compat.trl.compact_fused_head`); the policy's
    and the reference model's log-probabilities are the same.
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig

    from mosaic_gym.train.recipes import TrainRecipe, cpu_only, precision_flags, trl_config

    if not rows:
        raise ValueError("no preference pairs: every group was a tie under the oracle "
                         "(collect more episodes, a larger k, or sample at a higher temperature)")
    out = Path(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if chat_template is not None:
        from mosaic_gym.agent.models.chat import load_template

        tokenizer.chat_template = load_template(chat_template)
    dtype = torch.float32 if cpu_only() else "auto"
    policy = AutoModelForCausalLM.from_pretrained(str(model), dtype=dtype)
    holder = TrainRecipe(method="dpo", model=str(model), output_dir=str(out), name=name,
                         trl=dict(trl or {}))
    defaults = {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
                "learning_rate": 1e-6, "beta": 0.1, "logging_steps": 1,
                "save_strategy": "no", "report_to": "none", "dataloader_num_workers": 0,
                "max_length": 4096, "num_train_epochs": epochs, "disable_tqdm": quiet,
                "gradient_checkpointing": not cpu_only()}
    forced = {"output_dir": str(out), "seed": seed,
              "max_steps": max_steps if max_steps is not None else -1, **precision_flags()}
    config = trl_config(DPOConfig, holder, defaults, forced)
    collator = _collator_class()(pad_token_id=tokenizer.pad_token_id,
                                 max_length=config.max_length,
                                 truncation_mode=config.truncation_mode,
                                 pad_to_multiple_of=config.pad_to_multiple_of)
    dataset = Dataset.from_list([{"prompt": r["prompt"], "chosen": r["chosen"],
                                  "rejected": r["rejected"],
                                  "tools": r["tools"] if isinstance(r["tools"], str)
                                  else json.dumps(r["tools"])} for r in rows])
    trainer = _trainer_class()(model=policy, args=config, train_dataset=dataset,
                               processing_class=tokenizer, data_collator=collator)
    from mosaic_gym.train.compat.trl import compact_fused_head

    with compact_fused_head(compact_head):
        trainer.train()
    trainer.save_model(str(out))
    trainer.save_state()  # trainer_state.json: the per-step losses and rewards
    tokenizer.save_pretrained(str(out))
    from mosaic_gym.agent.models.constrained import carry_copy_table

    carry_copy_table(model, out)
    return out


def run_dpo(model: str | Path, out_dir: str | Path, *, env_id: str = "mosaic/All-v0",
            split: str = "train", attack: str = "all", seeds: Sequence[int] = (0,),
            limit: int | None = None, k: int = 4, backend: str = "fake",
            env_max_steps: int | None = None, l0: int = 400, length_penalty: bool = True,
            temperature: float = 1.0, top_p: float = 1.0, max_new_tokens: int = 256,
            max_steps: int | None = None, epochs: float = 1.0, seed: int = 0,
            trl: Mapping[str, Any] | None = None, name: str | None = None,
            chat_template: str | None = None, num_envs: int = 16,
            min_pairs: int = 1, teacher_fallback: bool = False, constrained: bool | str = False,
            quiet: bool = False) -> Path:
    """Collect, pair and train; writes ``groups.jsonl`` and ``mosaic_train.json`` too.

    DPO needs strict preferences. When the model's own groups give fewer than ``min_pairs``
    rows: with ``teacher_fallback``, rows from the scripted teachers on the same episodes
    are added (:func:`teacher_pair_rows`; the summary counts both kinds); without it, a
    ``ValueError`` says so. It never trains on nothing and never skips silently.
    """
    out = Path(out_dir)
    groups = collect_groups(model, out / "groups.jsonl", env_id=env_id, split=split,
                            attack=attack, seeds=seeds, limit=limit, k=k, backend=backend,
                            max_steps=env_max_steps, temperature=temperature, top_p=top_p,
                            max_new_tokens=max_new_tokens, seed=seed,
                            chat_template=chat_template, num_envs=num_envs,
                            constrained=constrained, quiet=quiet)
    rows = preference_rows(groups, l0=l0, length_penalty=length_penalty)
    own = len(rows)
    if own < min_pairs:
        if not teacher_fallback:
            raise ValueError(f"no preference pairs: {own} strict preferences from the model's "
                             f"groups, {min_pairs} needed (collect more episodes, a larger k, "
                             "sample at a higher temperature, or allow teacher pairs)")
        rows = rows + teacher_pair_rows(env_id=env_id, split=split, attack=attack,
                                        seeds=seeds, limit=limit, seed=seed, l0=l0,
                                        length_penalty=length_penalty)
    train_dpo(model, rows, out, seed=seed, max_steps=max_steps, epochs=epochs, trl=trl,
              name=name, chat_template=chat_template, quiet=quiet)
    from mosaic_gym.rollout.collect import read_groups
    from mosaic_gym.train.recipes import cpu_only

    summary = {"method": "dpo", "model": str(model), "seed": seed, "k": k, "l0": l0,
               "loss_head": "compact" if cpu_only() else "trl",
               "groups": sum(1 for _ in read_groups(groups)), "pairs": len(rows),
               "own_pairs": own, "teacher_pairs": len(rows) - own,
               "episode_seeds": list(seeds), "split": split, "attack": attack}
    (out / "mosaic_train.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return out


def run_dpo_recipe(recipe: Any, *, quiet: bool = False) -> Path:
    """Run a ``dpo`` :class:`~mosaic_gym.train.recipes.TrainRecipe`."""
    env, gen = recipe.env, recipe.generation
    return run_dpo(recipe.model, recipe.output_dir, env_id=env.id, split=env.split,
                   attack=env.attack, seeds=env.seeds, limit=env.limit, k=recipe.k,
                   backend=env.backend, env_max_steps=env.max_steps, l0=recipe.l0,
                   length_penalty=recipe.length_penalty, temperature=gen.temperature,
                   top_p=gen.top_p, max_new_tokens=gen.max_new_tokens,
                   max_steps=recipe.max_steps, epochs=recipe.epochs, seed=recipe.seed,
                   trl=recipe.trl, name=recipe.name, chat_template=recipe.chat_template,
                   quiet=quiet)
