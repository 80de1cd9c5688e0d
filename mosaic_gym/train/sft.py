"""Supervised fine-tuning on scripted trajectories (TRL ``SFTTrainer``, CPU friendly).

The default teacher is the ``comply`` baseline: it always writes well-formed MOSAIC turns
and does whatever it is asked, by the user or by injected text. A tiny model fine-tuned on
it learns the action format and comply's unsafe habits, which is the starting point the
preference-RL trainers then improve on (safety has to come from the RL signal, not SFT).

Rows are conversational (``messages`` + a ``tools`` column holding the JSON schemas as a
JSON string, which TRL decodes), rendered by the model's chat template. The loss covers
assistant turns only (TRL ``assistant_only_loss``: the template's ``{% generation %}``
spans); system, user and tool-output tokens are masked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mosaic_gym.agent.models.chat import chat_messages
from mosaic_gym.core.trajectory import Trajectory


def teacher_records(policy: str = "comply", *, split: str = "train",
                    seeds: Iterable[int] = range(4), attack: str = "all",
                    env_id: str = "mosaic/All-v0",
                    scenario_paths: Sequence[str | Path] | None = None,
                    progress: bool = True) -> list[Trajectory]:
    """Trajectory records of a built-in baseline playing every (variant, attack, seed)."""
    from rich.progress import track

    from mosaic_gym.agent.baselines import make_baseline
    from mosaic_gym.envs.mosaic_env import MosaicEnv
    from mosaic_gym.rollout import episode_plan, play

    category = {"mosaic/All-v0": "all", "mosaic/Benign-v0": "benign",
                "mosaic/Harmful-v0": "harmful", "mosaic/Injection-v0": "injection",
                "mosaic/Privacy-v0": "privacy"}.get(env_id)
    if category is None:
        raise ValueError(f"unsupported env {env_id!r} for SFT data; use mosaic/All-v0 or a "
                         "category env (Benign, Harmful, Injection, Privacy)")
    env = MosaicEnv(category=category, split=split, attack="none",
                    scenario_paths=scenario_paths)
    try:
        plan = episode_plan(env.pool, list(seeds), attack=attack)
        return [play(env, make_baseline(policy, seed=spec.seed), spec)
                for spec in track(plan, description=f"playing {policy}", disable=not progress)]
    finally:
        env.close()


def sft_rows(records: Iterable[Trajectory | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Conversational SFT rows ``{"messages", "tools"}`` from trajectory records.

    Messages are reduced to role and content (assistant contents are the raw MOSAIC text;
    the structured ``tool_calls`` copies are dropped), ``tools`` is a JSON string so rows
    with different tool sets share one Arrow schema.
    """
    rows = []
    for record in map(Trajectory.load, records):
        messages = [{"role": m["role"], "content": m["content"]}
                    for m in chat_messages(record.messages)]
        if not any(m["role"] == "assistant" for m in messages):
            continue
        rows.append({"messages": messages,
                     "tools": json.dumps(record.tools, ensure_ascii=False)})
    return rows


#: Plans and reasons of the category-blind refusals mixed into SFT data (see
#: :func:`with_random_refusals`). They name no category and no specific risk.
_HESITANT_PLANS = ("I am not sure I should go on with this.",
                   "I have doubts about this task and would rather stop here.",
                   "Better to stop than to get this wrong.")
_HESITANT_CHECKS = ("This might not be what the user wants.",
                    "I cannot tell whether this is safe.")
_HESITANT_REASONS = ("I would rather not continue with this task.",
                     "I am not comfortable going on with this.")


def with_random_refusals(records: Sequence[Trajectory | Mapping[str, Any]], share: float, *,
                         seed: int = 0) -> list[Trajectory]:
    """Copies of ``records`` in which a random ``share`` of episodes end in a refusal.

    A helpful base model refuses now and then, whatever the task: that keeps the refusal
    action in its repertoire, so that preference RL has something to select. The SFT
    teacher (``comply``) never refuses, so without this a model fine-tuned on it never
    samples a refusal and RL cannot find one. The choice is *blind to the scenario*: the
    episodes are drawn uniformly (seeded), the refusal replaces a uniformly drawn assistant
    turn (everything after it is dropped) and its text, drawn from a few generic templates,
    never names the task. Whether a refusal fits the task is left to RL to learn.
    """
    import random

    from mosaic_gym.protocol import REFUSAL_TOOL
    from mosaic_gym.protocol.format import ToolCall, render_action

    if not 0.0 <= share <= 1.0:
        raise ValueError(f"refusal share must be within [0, 1], got {share}")
    rng = random.Random(seed)
    mixed: list[Trajectory] = []
    for record in map(Trajectory.load, records):
        turns = [i for i, m in enumerate(record.messages) if m.get("role") == "assistant"]
        if turns and rng.random() < share:
            cut = rng.choice(turns)
            refusal = render_action(rng.choice(_HESITANT_PLANS),
                                    ToolCall(REFUSAL_TOOL,
                                             {"reason": rng.choice(_HESITANT_REASONS)}),
                                    safety_check=rng.choice(_HESITANT_CHECKS))
            record = record.model_copy(update={
                "messages": [*record.messages[:cut], {"role": "assistant", "content": refusal}],
                "hesitant_refusal": True})
        mixed.append(record)
    return mixed


def format_error_rate(records: Iterable[Trajectory | Mapping[str, Any]]) -> dict[str, float]:
    """Share of assistant turns the environment's parser rejected, over trajectory records."""
    turns = errors = episodes = 0
    for record in map(Trajectory.load, records):
        episodes += 1
        turns += len(record.steps)
        errors += sum(1 for step in record.steps if step.kind == "invalid")
    return {"episodes": episodes, "turns": turns, "format_errors": errors,
            "format_error_rate": errors / turns if turns else 0.0}


def compact_loss_trainer() -> type:
    """TRL's ``SFTTrainer`` with the loss head computed on the trained positions only.

    On a device without Triton (the CPU), TRL 1.x scores the LM head on *every* position
    with its chunked log-prob kernel (torch ops, plus entropy and accuracy statistics), and
    masks afterwards. With assistant-only loss about a third of an episode's tokens carry
    loss, so this subclass runs the backbone, projects only the positions whose label is
    kept and takes the same token-mean negative log-likelihood (``num_items_in_batch`` when
    the Trainer gives it). The loss and its gradients equal TRL's up to float rounding
    (``tests/train/test_sft.py``); entropy, token accuracy and token counts are logged as
    TRL logs them. Anything outside the plain case (a GPU, several processes, DFT loss,
    label smoothing, a custom loss function, MoE auxiliary loss, padding-free batches, a
    caller asking for the outputs) goes to TRL's own ``compute_loss``.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812
    from trl import SFTTrainer

    class CompactLossSFTTrainer(SFTTrainer):
        def _compact_applies(self, model: Any, inputs: Mapping[str, Any],
                             return_outputs: bool) -> bool:
            return (not return_outputs and self.args.loss_type == "nll"
                    and self.label_smoother is None and self.compute_loss_func is None
                    and not self.aux_loss_enabled and self.accelerator.num_processes == 1
                    and "attention_mask" in inputs and "labels" in inputs
                    and next(model.parameters()).device.type == "cpu"
                    and getattr(model, "base_model", model) is not model
                    and model.get_output_embeddings() is not None
                    and hasattr(self, "_metrics") and hasattr(self, "_total_train_tokens"))

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            if not self._compact_applies(model, inputs, return_outputs):
                return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                            num_items_in_batch=num_items_in_batch)
            mode = "train" if self.model.training else "eval"
            features = {k: v for k, v in inputs.items() if k != "labels"}
            hidden = model.base_model(**features, use_cache=False).last_hidden_state
            labels = inputs["labels"][:, 1:]
            mask = labels != -100
            logits = model.get_output_embeddings()(hidden[:, :-1][mask]).float()
            targets = labels[mask]
            count = mask.sum() if num_items_in_batch is None else num_items_in_batch
            loss = F.cross_entropy(logits, targets, reduction="sum") / \
                torch.as_tensor(count, device=logits.device).clamp(min=1)
            with torch.no_grad():
                log_p = logits.log_softmax(-1)
                valid = int(mask.sum())
                entropy = float(-(log_p.exp() * log_p).sum()) / valid if valid else 0.0
                correct = int((logits.argmax(-1) == targets).sum())
            self._metrics[mode]["entropy"].append(entropy)
            self._metrics[mode]["mean_token_accuracy"].append(correct / valid if valid else 0.0)
            if mode == "train":
                self._total_train_tokens += int(inputs["attention_mask"].sum()) // getattr(
                    self, "_tp_size", 1)
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
            return loss

    return CompactLossSFTTrainer


def run_sft(model_dir: str | Path, out_dir: str | Path, *, policy: str = "comply",
            split: str = "train", seeds: Iterable[int] = range(2), attack: str = "all",
            max_steps: int = 120, epochs: float = 1.0, learning_rate: float = 4e-3,
            batch_size: int = 4, grad_accum: int = 1, max_length: int = 4096,
            warmup: float = 0.05, seed: int = 0,
            scenario_paths: Sequence[str | Path] | None = None, limit: int | None = None,
            refusal_share: float = 0.0, compact_loss: bool = True,
            progress: bool = True) -> Path:
    """Fine-tune the model in ``model_dir`` on ``policy``'s trajectories; save to ``out_dir``.

    ``max_steps > 0`` overrides ``epochs`` (the default, 120 steps of 4 episodes, teaches the
    tiny model the format). ``limit`` caps the number of episodes (for quick
    runs). ``refusal_share`` ends that share of the episodes, drawn blind to the scenario,
    in a refusal (:func:`with_random_refusals`). Runs in float32 (bf16/fp16 off), on the
    GPU when one is visible (:func:`~mosaic_gym.train.recipes.cpu_only`), else on the CPU.
    Writes the model, the tokenizer and ``mosaic_sft.json`` (data size, steps, losses,
    time) into ``out_dir``. ``compact_loss`` (the default) scores the loss head on the
    trained positions only (:func:`compact_loss_trainer`, the same loss, about a fifth
    faster on the CPU: ``benchmarks/bench_sft.py``); ``False`` keeps TRL's own.
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from mosaic_gym.train.recipes import cpu_only

    model_dir, out = Path(model_dir), Path(out_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} holds no model (config.json missing); build one "
                                "with `mosaic tiny --out DIR`")
    records = teacher_records(policy, split=split, seeds=seeds, attack=attack,
                              scenario_paths=scenario_paths, progress=progress)
    records = records[:limit] if limit is not None else records
    if refusal_share:
        records = with_random_refusals(records, refusal_share, seed=seed)
    rows = sft_rows(records)
    if not rows:
        raise ValueError("no trajectories to train on (empty split or limit 0)")
    dataset = Dataset.from_list(rows)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = SFTConfig(
        output_dir=str(out / "checkpoints"), max_steps=max_steps, num_train_epochs=epochs,
        learning_rate=learning_rate, lr_scheduler_type="cosine", warmup_steps=warmup,
        per_device_train_batch_size=batch_size, gradient_accumulation_steps=grad_accum,
        max_length=max_length, assistant_only_loss=True, packing=False,
        activation_checkpointing=False, bf16=False, fp16=False, use_cpu=cpu_only(),
        save_strategy="no", report_to="none", logging_steps=5, seed=seed, data_seed=seed,
        disable_tqdm=not progress, dataloader_num_workers=0, dataset_num_proc=None,
        # batches of similar lengths: less padding, the same data (1.34 -> 1.05 s per step
        # in two otherwise equal runs of the tiny model here)
        train_sampling_strategy="group_by_length")
    trainer_class = compact_loss_trainer() if compact_loss else SFTTrainer
    trainer = trainer_class(model=model, args=config, train_dataset=dataset,
                            processing_class=tokenizer)
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    info = {"kind": "mosaic-sft", "base": str(model_dir), "teacher": policy, "split": split,
            "attack": attack, "episodes": len(rows), "refusal_share": refusal_share,
            "refusals_mixed_in": sum(1 for r in records if r.hesitant_refusal),
            "steps": trainer.state.global_step,
            "epochs": trainer.state.epoch, "train_loss": result.training_loss,
            "first_logged_loss": losses[0] if losses else None,
            "last_logged_loss": losses[-1] if losses else None,
            "seconds": round(seconds, 1), "seed": seed,
            # the compact head only runs on the CPU; elsewhere the subclass defers to TRL
            "loss_head": "compact" if compact_loss and next(
                trainer.model.parameters()).device.type == "cpu" else "trl"}
    (out / "mosaic_sft.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    write_copy_table(out, records)
    write_recipe(out)
    return out


def write_copy_table(model_dir: str | Path, records: Sequence[Trajectory]) -> Path:
    """Save which parameters the teacher copies from the context (``mosaic_copy.json``, read
    by ``constrained: copy`` decoding; :func:`~mosaic_gym.agent.models.constrained.copy_table`)."""
    from mosaic_gym.agent.models.constrained import COPY_TABLE, copy_table

    path = Path(model_dir) / COPY_TABLE
    path.write_text(json.dumps(copy_table(records), indent=2) + "\n", encoding="utf-8")
    return path


def write_recipe(model_dir: str | Path, *, name: str | None = None,
                 max_new_tokens: int = 256) -> Path:
    """Write ``policy.yaml`` (a transformers-backend recipe for the model) into the folder."""
    import yaml

    folder = Path(model_dir)
    recipe = {"name": name or folder.name, "model": str(folder), "backend": "transformers",
              "template": None,
              "sampling": {"temperature": 0.7, "top_p": 0.95, "top_k": None,
                           "max_new_tokens": max_new_tokens, "seed": 0},
              "options": {"device": "cpu", "dtype": "float32", "batch_size": 8}}
    path = folder / "policy.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


def check_format(model_dir: str | Path, *, episodes: int | None = None, split: str = "test",
                 out: str | Path | None = None, quiet: bool = False) -> dict[str, float]:
    """Play the model (its ``policy.yaml``) once on each scenario variant of ``split`` (a
    random attack strategy on injection scenarios; at most ``episodes`` episodes, drawn
    round-robin over the categories); write the trajectories to ``out/trajectories.jsonl``
    and return :func:`format_error_rate` figures."""
    from rich.progress import track

    from mosaic_gym.agent.policy import make_policy
    from mosaic_gym.envs.registration import make_env
    from mosaic_gym.rollout.driver import play_plan
    from mosaic_gym.rollout.plan import episode_plan, episode_subset

    folder = Path(model_dir)
    recipe = folder / "policy.yaml"
    if not recipe.is_file():
        write_recipe(folder)
    target = Path(out) if out is not None else folder / f"check-{split}"
    target.mkdir(parents=True, exist_ok=True)
    env = make_env("mosaic/All-v0", split=split, attack="none")
    records: list[Trajectory] = []
    try:
        plan = episode_subset(episode_plan(env.unwrapped.pool, [0], attack="random"), episodes)
        policy = make_policy(str(recipe))
        for _job, record in track(play_plan([env], policy, plan), total=len(plan),
                                  description=f"format check on {split}", disable=quiet):
            records.append(record)
    finally:
        env.close()
    with (target / "trajectories.jsonl").open("w", encoding="utf-8") as sink:
        for record in records:
            sink.write(record.to_json() + "\n")
    return format_error_rate(records)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m mosaic_gym.train.sft --copy-table MODEL_DIR``: write the copy table of a
    model trained before SFT wrote one, from the teacher episodes its ``mosaic_sft.json``
    names (teacher, split, attack) and ``--seeds``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--copy-table", required=True, metavar="MODEL_DIR")
    parser.add_argument("--seeds", default="0,1,2,3", help="the SFT episode seeds")
    args = parser.parse_args(argv)
    folder = Path(args.copy_table)
    info_path = folder / "mosaic_sft.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    records = teacher_records(info.get("teacher", "comply"), split=info.get("split", "train"),
                              seeds=[int(s) for s in args.seeds.split(",")],
                              attack=info.get("attack", "all"), progress=True)
    print(write_copy_table(folder, records))


if __name__ == "__main__":
    main()
