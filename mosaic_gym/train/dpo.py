"""DPO on oracle-ranked pairs of the model's own rollouts (TRL ``DPOTrainer``).

1. **Collect**: the model plays groups of ``k`` rollouts of the same episodes
   (:class:`~mosaic_gym.train.collect.LockstepCollector` with a sampling
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
from dataclasses import dataclass
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
    from trl.trainer.dpo_trainer import DataCollatorForPreference
    from trl.trainer.utils import pad

    @dataclass
    class MaskedPreferenceCollator(DataCollatorForPreference):
        """``DataCollatorForPreference`` whose completion mask is the rows' loss mask."""

        def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
            import torch

            output = super().torch_call(examples)
            masks = ([[0] * len(e["prompt_ids"]) + list(e["chosen_loss_mask"]) for e in examples]
                     + [[0] * len(e["prompt_ids"]) + list(e["rejected_loss_mask"])
                        for e in examples])
            if self.max_length is not None:
                keep = (slice(None, self.max_length) if self.truncation_mode == "keep_start"
                        else slice(-self.max_length, None))
                masks = [m[keep] for m in masks]
            padded = pad([torch.tensor(m, dtype=torch.long) for m in masks], padding_value=0,
                         padding_side="right", pad_to_multiple_of=self.pad_to_multiple_of)
            if padded.shape != output["completion_mask"].shape:
                raise RuntimeError("loss mask and completion mask disagree in shape")
            output["completion_mask"] = padded
            return output

    return MaskedPreferenceCollator


def _trainer_class() -> type:
    from trl import DPOTrainer

    class MaskedDPOTrainer(DPOTrainer):
        """``DPOTrainer`` for multi-turn completions: only the agent's tokens are scored."""

        def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any,
                             dataset_name: str) -> Any:
            tokenizer = getattr(processing_class, "tokenizer", processing_class)
            columns = list(dataset.column_names)
            dataset = dataset.map(_tokenize_or_flag, fn_kwargs={"tokenizer": tokenizer},
                                  remove_columns=columns, desc=f"Tokenizing {dataset_name}")
            before = len(dataset)
            dataset = dataset.filter(lambda row: not row["skip"]).remove_columns("skip")
            if len(dataset) < before:
                print(f"dpo: dropped {before - len(dataset)} of {before} pairs the chat "
                      "template cannot mask turn by turn")
            if args.max_length is not None and args.truncation_mode == "keep_start":
                dataset = dataset.filter(lambda row: len(row["prompt_ids"]) < args.max_length)
            if len(dataset) == 0:
                raise ValueError(f"no usable preference pairs left in {dataset_name}")
            return dataset

        def _set_signature_columns_if_needed(self) -> None:
            super()._set_signature_columns_if_needed()
            columns: list[str] = list(self._signature_columns or [])
            self._signature_columns = [*columns, *LOSS_MASK_COLUMNS]  # type: ignore[assignment]

    return MaskedDPOTrainer


# -- collection and training ----------------------------------------------------------------

def collect_groups(model: str | Path, out: str | Path, *, env_id: str = "mosaic/All-v0",
                   split: str = "train", attack: str = "all", seeds: Sequence[int] = (0,),
                   limit: int | None = None, k: int = 4, backend: str = "fake",
                   max_steps: int | None = None, temperature: float = 1.0, top_p: float = 1.0,
                   max_new_tokens: int = 256, num_envs: int = 16, seed: int = 0,
                   chat_template: str | None = None, stratify: bool = False,
                   quiet: bool = False) -> Path:
    """Let ``model`` play ``k`` sampled rollouts of each episode; write the groups to ``out``.

    With ``limit``, a seeded random subset of the episodes (spread over the library, unlike
    ``collect``'s first-N); with ``stratify`` too, drawn round-robin over the categories
    (:func:`~mosaic_gym.runner.episode_subset`). The file is a ``mosaic-collect/1`` JSONL (see
    :mod:`mosaic_gym.train.collect`); an existing file is resumed.
    """
    from rich.progress import track

    from mosaic_gym.agent.models.transformers_policy import TransformersPolicy
    from mosaic_gym.evaluate import make_env
    from mosaic_gym.runner import episode_subset
    from mosaic_gym.train.collect import (
        FORMAT,
        GroupSpec,
        GroupWriter,
        LockstepCollector,
        plan_groups,
    )

    probe = make_env(env_id, split=split, backend=backend, attack="none")
    try:
        specs = plan_groups(probe, seeds, attack=attack)
        category = ({variant.id: variant.category for variant in probe.unwrapped.pool}
                    if stratify else None)
    finally:
        probe.close()
    specs = episode_subset(specs, limit, seed, category)
    policy = TransformersPolicy(str(model), sampling={
        "temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens,
        "seed": seed}, batch_size=num_envs, template=chat_template,
        name=f"transformers:{model}")
    header = {"type": "header", "format": FORMAT, "policy": policy.name, "env": env_id, "k": k,
              "split": split, "attack": attack, "backend": backend, "scenario": None,
              "seeds": list(seeds), "limit": limit}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    collector = LockstepCollector(policy, env_id=env_id, k=k, num_envs=num_envs, split=split,
                                  backend=backend, max_steps=max_steps)
    try:
        with GroupWriter(out, header) as writer:
            todo: list[GroupSpec] = [s for s in specs if s.key not in writer.done]
            for group in track(collector.run(todo), total=len(todo), disable=quiet,
                               description=f"collecting {k} rollouts x {len(todo)} episodes"):
                writer.write(group)
    finally:
        collector.close()
    return out


def preference_rows(groups_path: str | Path, *, l0: int = 400,
                    length_penalty: bool = True) -> list[dict[str, Any]]:
    """DPO rows from a collection file, ranked by the preference oracle."""
    from mosaic_gym.judge.preference import PreferenceOracle
    from mosaic_gym.train.collect import read_groups
    from mosaic_gym.train.pairs import build_dpo_pairs

    groups = list(read_groups(groups_path))
    oracle = PreferenceOracle(l0=l0, length_penalty=length_penalty)
    return list(build_dpo_pairs(groups, oracle))


def train_dpo(model: str | Path, rows: Sequence[Mapping[str, Any]], out_dir: str | Path, *,
              seed: int = 0, max_steps: int | None = None, epochs: float = 1.0,
              trl: Mapping[str, Any] | None = None, name: str | None = None,
              chat_template: str | None = None, quiet: bool = False) -> Path:
    """Run :class:`MaskedDPOTrainer` on preference ``rows``; save the model to ``out_dir``."""
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
    trainer.train()
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def run_dpo(model: str | Path, out_dir: str | Path, *, env_id: str = "mosaic/All-v0",
            split: str = "train", attack: str = "all", seeds: Sequence[int] = (0,),
            limit: int | None = None, k: int = 4, backend: str = "fake",
            env_max_steps: int | None = None, l0: int = 400, length_penalty: bool = True,
            temperature: float = 1.0, top_p: float = 1.0, max_new_tokens: int = 256,
            max_steps: int | None = None, epochs: float = 1.0, seed: int = 0,
            trl: Mapping[str, Any] | None = None, name: str | None = None,
            chat_template: str | None = None, num_envs: int = 16, stratify: bool = False,
            quiet: bool = False) -> Path:
    """Collect, pair and train; writes ``groups.jsonl`` and ``mosaic_train.json`` too."""
    out = Path(out_dir)
    groups = collect_groups(model, out / "groups.jsonl", env_id=env_id, split=split,
                            attack=attack, seeds=seeds, limit=limit, k=k, backend=backend,
                            max_steps=env_max_steps, temperature=temperature, top_p=top_p,
                            max_new_tokens=max_new_tokens, seed=seed,
                            chat_template=chat_template, num_envs=num_envs,
                            stratify=stratify, quiet=quiet)
    rows = preference_rows(groups, l0=l0, length_penalty=length_penalty)
    train_dpo(model, rows, out, seed=seed, max_steps=max_steps, epochs=epochs, trl=trl,
              name=name, chat_template=chat_template, quiet=quiet)
    from mosaic_gym.train.collect import read_groups

    summary = {"method": "dpo", "model": str(model), "seed": seed, "k": k, "l0": l0,
               "groups": sum(1 for _ in read_groups(groups)), "pairs": len(rows),
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
                   stratify=env.stratify, quiet=quiet)
