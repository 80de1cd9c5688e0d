"""What the fused LM head costs GRPO and DPO on the CPU, with TRL's choice and the compact one.

    python benchmarks/bench_rl_head.py                        # tiny model built in a temp folder
    python benchmarks/bench_rl_head.py --model runs/competence/s900-seeds16/sft --json out.json

TRL's GRPO and DPO trainers take their log-probabilities (policy, old policy, reference)
from ``add_fused_lm_head``. Without Triton (the CPU) it projects every position of the
batch through the LM head, prompt and padding included, and masks afterwards;
``mosaic_gym.train.compat.trl.compact_fused_head`` (the default of ``run_grpo`` and
``train_dpo``) has it project the labelled positions only. Two tables, measured in one run,
the two heads alternating so that a change of load hits both:

* **log-prob pass**: forward + backward of the fused head on batches shaped as GRPO's
  (``--k`` episodes of the ``comply`` teacher on train seed 0: prompt = system, tools and
  user request, left-padded; completion = the rest, right-padded; completion tokens
  labelled), and the no-grad forward of the reference model; the median of ``--rounds``.
* **DPO steps**: ``train_dpo`` on the scripted teachers' preference pairs
  (``teacher_pair_rows``), ``--dpo-steps`` steps with each head: the wall seconds of the
  call, TRL's ``train_runtime`` per step (without loading and tokenizing) and the final loss
  (the two runs see the same pairs in the same order; TRL's head runs first).
* **GRPO steps** (``--grpo-steps``, off by default): ``run_grpo`` pairwise with each head,
  2 episodes of k = 4 rollouts per step, generation included (copy-constrained when the
  model has a copy table). Sampling makes the two runs' rollouts differ after the first
  update, so read this table over several steps.

Nothing is asserted; compare rows of one run only (the machine's load is printed with them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _train_common import machine_load, model_or_tiny, quiet_hf  # noqa: E402

HEADS = (("trl", False), ("compact", True))



def grpo_batches(model_dir: Path, k: int, batches: int,
                 scenarios: list[str] | None = None) -> list[dict[str, Any]]:
    """Token batches shaped as GRPO's: left-padded prompts, right-padded completions."""
    import torch
    from transformers import AutoTokenizer

    from mosaic_gym.train.sft import sft_rows, teacher_records

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    records = teacher_records("comply", seeds=[0], scenario_paths=scenarios,
                              split="all" if scenarios else "train", progress=False)
    rows = sft_rows(records)[:k * batches]
    if len(rows) < k * batches:
        raise SystemExit(f"only {len(rows)} teacher episodes for {batches} batches of {k}")
    out = []
    for start in range(0, k * batches, k):
        prompts, completions = [], []
        for row in rows[start:start + k]:
            tools = json.loads(row["tools"])
            first = next(i for i, m in enumerate(row["messages"]) if m["role"] == "user")
            prompt = tokenizer.apply_chat_template(
                row["messages"][:first + 1], tools=tools, tokenize=True, return_dict=True,
                add_generation_prompt=True)["input_ids"]
            full = tokenizer.apply_chat_template(row["messages"], tools=tools, tokenize=True,
                                                 return_dict=True)["input_ids"]
            prompts.append(list(prompt))
            completions.append(list(full[len(prompt):]))
        width_p = max(map(len, prompts))
        width_c = max(map(len, completions))
        ids, mask, labels = [], [], []
        for p, c in zip(prompts, completions, strict=True):
            left, right = width_p - len(p), width_c - len(c)
            ids.append([pad] * left + p + c + [pad] * right)
            mask.append([0] * left + [1] * (len(p) + len(c)) + [0] * right)
            labels.append([-100] * (width_p) + c + [-100] * right)
        out.append({"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask),
                    "labels": torch.tensor(labels)})
    return out


def logprob_pass(model_dir: Path, batches: list[dict[str, Any]],
                 rounds: int) -> list[dict[str, Any]]:
    """Median seconds of one fused forward+backward and one no-grad forward, per head."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from mosaic_gym.train.compat.trl import compact_fused_head

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    add_fused_lm_head(model, temperature=0.7, outputs=("log_probs", "entropy"))
    times: dict[tuple[str, str], list[float]] = {}
    for round_ in range(rounds + 1):          # round 0 warms up, not counted
        for head, compact in HEADS:
            with compact_fused_head(compact):
                start = time.perf_counter()
                for batch in batches:
                    out = model(**batch, fused_lm_head=True)
                    out.log_probs.sum().backward()
                    model.zero_grad(set_to_none=True)
                train = time.perf_counter() - start
                start = time.perf_counter()
                with torch.no_grad():
                    for batch in batches:
                        model(**batch, fused_lm_head=True)
                ref = time.perf_counter() - start
            if round_:
                times.setdefault((head, "policy fwd+bwd"), []).append(train / len(batches))
                times.setdefault((head, "reference fwd"), []).append(ref / len(batches))
    positions = sum(int(b["attention_mask"].numel()) for b in batches) / len(batches)
    kept = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches) / len(batches)
    return [{"head": head, "pass": kind, "seconds": statistics.median(values),
             "positions": positions, "labelled": kept}
            for (head, kind), values in times.items()]


def dpo_steps(model_dir: Path, steps: int, work: Path) -> dict[str, dict[str, Any]]:
    """``train_dpo`` with each head on the same teacher pairs."""
    from mosaic_gym.train.dpo import teacher_pair_rows, train_dpo

    rows = teacher_pair_rows(split="train", seeds=(0,), limit=max(8, steps))
    result = {}
    for head, compact in HEADS:
        out = work / f"dpo-{head}"
        start = time.perf_counter()
        train_dpo(model_dir, rows, out, max_steps=steps, quiet=True, compact_head=compact,
                  trl={"learning_rate": 5e-5})
        seconds = time.perf_counter() - start
        logs = json.loads((out / "trainer_state.json").read_text())["log_history"] \
            if (out / "trainer_state.json").is_file() else []
        losses = [entry["loss"] for entry in logs if "loss" in entry]
        runtime = next((entry["train_runtime"] for entry in logs if "train_runtime" in entry),
                       seconds)
        result[head] = {"steps": steps, "pairs": len(rows), "seconds": seconds,
                        "train_seconds": runtime, "per_step": runtime / steps,
                        "last_loss": losses[-1] if losses else None}
    return result


def grpo_steps(model_dir: Path, steps: int, max_new_tokens: int, work: Path,
               scenarios: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``run_grpo`` (pairwise, k 4, copy-constrained when the model has a copy table) with
    each head: generation included, so this is what a GRPO stage gains."""
    from mosaic_gym.train.grpo import run_grpo

    result = {}
    constrained = "copy" if (model_dir / "mosaic_copy.json").is_file() else False
    for head, compact in HEADS:
        out = work / f"grpo-{head}"
        start = time.perf_counter()
        run_grpo(model_dir, out, reward="pairwise", split="all" if scenarios else "train",
                 limit=2 * steps, k=4, max_steps=steps, max_new_tokens=max_new_tokens,
                 env_max_steps=8, scenario_paths=scenarios, temperature=0.7,
                 constrained=constrained, quiet=True,
                 trl={"learning_rate": 2e-4, "per_device_train_batch_size": 8},
                 compact_head=compact)
        seconds = time.perf_counter() - start
        summary = json.loads((out / "mosaic_train.json").read_text())
        runtime = next((e["train_runtime"] for e in summary["log_history"]
                        if "train_runtime" in e), seconds)
        result[head] = {"steps": steps, "seconds": seconds, "train_seconds": runtime,
                        "per_step": runtime / steps, "rollouts": summary["rollouts"],
                        "loss_head": summary["loss_head"]}
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a model folder (default: build the tiny "
                        "model into a temporary folder)")
    parser.add_argument("--k", type=int, default=4, help="rows per GRPO-shaped batch")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dpo-steps", type=int, default=8, help="0 skips the DPO table")
    parser.add_argument("--grpo-steps", type=int, default=0,
                        help="also time this many pairwise GRPO steps per head (0: skip)")
    parser.add_argument("--grpo-max-new-tokens", type=int, default=128)
    parser.add_argument("--scenario", action="append", default=None,
                        help="a scenario file to draw the GRPO-shaped batches from (repeatable; "
                        "default: the train split of the library)")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.k < 1 or args.batches < 1 or args.rounds < 1 or args.dpo_steps < 0 \
            or args.grpo_steps < 0 or args.grpo_max_new_tokens < 1:
        parser.error("--k, --batches, --rounds and --grpo-max-new-tokens must be at least 1, "
                     "--dpo-steps and --grpo-steps at least 0")
    quiet_hf()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = model_or_tiny(args.model, work, args.scenario)
        threads = os.environ.get('OMP_NUM_THREADS', '-')
        print(f"machine: {machine_load()}; OMP_NUM_THREADS={threads}")
        batches = grpo_batches(model, args.k, args.batches, args.scenario)
        passes = logprob_pass(model, batches, args.rounds)
        first = passes[0]
        print(f"\nfused log-prob pass, GRPO-shaped batches of {args.k} ({args.batches} batches, "
              f"median of {args.rounds} rounds): {first['positions']:.0f} positions per "
              f"batch, {first['labelled']:.0f} labelled "
              f"({first['labelled'] / first['positions']:.0%})")
        print(f"{'pass':<16} {'trl s':>8} {'compact s':>10} {'compact/trl':>12}")
        by = {(row["head"], row["pass"]): row["seconds"] for row in passes}
        for kind in ("policy fwd+bwd", "reference fwd"):
            trl, compact = by[("trl", kind)], by[("compact", kind)]
            print(f"{kind:<16} {trl:>8.3f} {compact:>10.3f} {compact / trl:>12.2f}")
        dpo = dpo_steps(model, args.dpo_steps, work) if args.dpo_steps else {}
        if dpo:
            print(f"\nDPO (train_dpo, batch 2 pairs, {args.dpo_steps} steps, "
                  f"{dpo['trl']['pairs']} teacher pairs, the same data and seed)")
            print(f"{'loss head':<10} {'wall s':>8} {'train s':>8} {'s/step':>7} "
                  f"{'last loss':>10}")
            for head, row in dpo.items():
                loss = "-" if row["last_loss"] is None else f"{row['last_loss']:.4f}"
                print(f"{head:<10} {row['seconds']:>8.1f} {row['train_seconds']:>8.1f} "
                      f"{row['per_step']:>7.2f} {loss:>10}")
        grpo = (grpo_steps(model, args.grpo_steps, args.grpo_max_new_tokens, work,
                           args.scenario) if args.grpo_steps else {})
        if grpo:
            print(f"\nGRPO (run_grpo pairwise, k 4, 2 episodes per step, {args.grpo_steps} "
                  f"steps, {args.grpo_max_new_tokens}-token turns; generation included)")
            print(f"{'loss head':<10} {'wall s':>8} {'train s':>8} {'s/step':>7} {'rollouts':>9}")
            for head, row in grpo.items():
                print(f"{head:<10} {row['seconds']:>8.1f} {row['train_seconds']:>8.1f} "
                      f"{row['per_step']:>7.2f} {row['rollouts']:>9}")
        print(f"\nmachine after the run: {machine_load()}")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps({"logprob_pass": passes, "dpo": dpo,
                                                   "grpo": grpo},
                                                  indent=2) + "\n")


if __name__ == "__main__":
    main()
