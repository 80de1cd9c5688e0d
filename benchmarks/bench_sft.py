"""Where SFT time goes on this machine, and what the competent base costs here.

    python benchmarks/bench_sft.py                       # tiny model built in a temp folder
    python benchmarks/bench_sft.py --model runs/tiny --steps 20 --json runs/bench_sft.json

Prints three tables, measured in one run:

* **tokens per SFT episode** (the ``comply`` teacher on train-split seed 0, or every split
  of the ``--scenario`` files, rendered by the
  model's chat template with its tools): how many tokens the system prompt with the tool
  schemas, the user request, the tool outputs and the assistant turns take. Only the
  assistant tokens carry loss; every token costs forward and backward time.
* **SFT seconds per step** with TRL's ``SFTTrainer`` as ``mosaic_gym.train.sft.run_sft``
  runs it (batch 4, grouped by length, float32), once with TRL's own loss head (every
  position scored on the CPU) and once with the compact one (trained positions only, the
  default), and the minutes that the replication's 120-step SFT stage and the competence
  curve's 900- and 1,800-step points take at each rate;
* **forward + backward** of one batch of 4 random sequences per length, with the SDPA and
  the eager attention: how the step time grows with the sequence length.

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


def token_budget(model_dir: Path, episodes: int,
                 scenarios: list[str] | None = None) -> dict[str, float]:
    """Mean tokens per episode by part of the rendered conversation."""
    from transformers import AutoTokenizer

    from mosaic_gym.train.sft import sft_rows, teacher_records

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    records = teacher_records("comply", seeds=[0], scenario_paths=scenarios,
                              split="all" if scenarios else "train", progress=False)
    rows = sft_rows(records)[:episodes]
    parts: dict[str, list[int]] = {"system + tools": [], "user": [], "tool outputs": [],
                                   "assistant (loss)": [], "total": []}
    for row in rows:
        tools = json.loads(row["tools"]) if isinstance(row["tools"], str) else row["tools"]
        sums = dict.fromkeys(parts, 0)
        previous = 0
        for i, message in enumerate(row["messages"]):
            ids = tokenizer.apply_chat_template(row["messages"][:i + 1], tools=tools,
                                                tokenize=True, return_dict=True)["input_ids"]
            role = {"system": "system + tools", "user": "user", "tool": "tool outputs",
                    "assistant": "assistant (loss)"}[message["role"]]
            sums[role] += len(ids) - previous
            previous = len(ids)
        sums["total"] = previous
        for key, value in sums.items():
            parts[key].append(value)
    return {key: statistics.mean(values) for key, values in parts.items()} | {
        "episodes": len(rows)}


def sft_step_seconds(model_dir: Path, steps: int, work: Path,
                     scenarios: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """TRL's loss head and the compact one (``run_sft(compact_loss=...)``), same data."""
    from mosaic_gym.train.sft import run_sft

    rows = {}
    for head, compact in (("trl", False), ("compact", True)):
        out = run_sft(model_dir, work / f"sft-{head}", seeds=(0,), max_steps=steps,
                      learning_rate=3e-3, batch_size=4, scenario_paths=scenarios,
                      split="all" if scenarios else "train", compact_loss=compact,
                      progress=False)
        info = json.loads((out / "mosaic_sft.json").read_text())
        rows[head] = {"steps": info["steps"], "seconds": info["seconds"],
                      "per_step": info["seconds"] / max(info["steps"], 1),
                      "train_loss": info["train_loss"]}
    return rows


def forward_backward(model_dir: Path, lengths: list[int], rounds: int) -> list[dict[str, Any]]:
    import torch
    from transformers import AutoModelForCausalLM

    rows = []
    for impl in ("sdpa", "eager"):
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                     attn_implementation=impl)
        vocab = model.config.vocab_size
        for length in lengths:
            batch = torch.randint(0, vocab, (4, length), generator=torch.Generator().manual_seed(0))
            times = []
            for _ in range(rounds + 1):          # the first round warms up, not counted
                start = time.perf_counter()
                model(input_ids=batch, labels=batch).loss.backward()
                model.zero_grad(set_to_none=True)
                times.append(time.perf_counter() - start)
            median = statistics.median(times[1:])
            rows.append({"attention": impl, "length": length, "seconds": median,
                         "tokens_per_s": 4 * length / median})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a model folder (default: build the tiny "
                        "model into a temporary folder)")
    parser.add_argument("--steps", type=int, default=20, help="SFT steps to time")
    parser.add_argument("--episodes", type=int, default=60, help="episodes for the token table")
    parser.add_argument("--lengths", default="256,512,1024,1536")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenario", action="append", default=None,
                        help="a scenario file to draw the episodes from (repeatable; default: "
                        "the train split of the library)")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.episodes < 1 or args.rounds < 1:
        parser.error("--steps, --episodes and --rounds must be at least 1")
    try:
        lengths = [int(v) for v in args.lengths.split(",")]
    except ValueError:
        parser.error(f"--lengths must be integers separated by commas, got {args.lengths!r}")
    if any(length < 2 for length in lengths):
        parser.error("every --lengths value must be at least 2 tokens")
    quiet_hf()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = model_or_tiny(args.model, work, args.scenario)
        threads = os.environ.get('OMP_NUM_THREADS', '-')
        print(f"machine: {machine_load()}; OMP_NUM_THREADS={threads}")
        budget = token_budget(model, args.episodes, args.scenario)
        print(f"\ntokens per SFT episode (comply, train seed 0, {budget['episodes']} episodes)")
        print(f"{'part':<20} {'tokens':>8} {'share':>7}")
        for key in ("system + tools", "user", "tool outputs", "assistant (loss)", "total"):
            print(f"{key:<20} {budget[key]:>8.0f} {budget[key] / budget['total']:>7.1%}")

        sft = sft_step_seconds(model, args.steps, work, args.scenario)
        print(f"\nSFT (TRL SFTTrainer, batch 4, {args.steps} steps, the same data and seed)")
        print(f"{'loss head':<10} {'seconds':>8} {'s/step':>7} {'train loss':>10} "
              f"{'120 steps':>10} {'900 steps':>10} {'1,800 steps':>12}  (minutes)")
        for head, row in sft.items():
            per_step = row["per_step"]
            print(f"{head:<10} {row['seconds']:>8.1f} {per_step:>7.2f} "
                  f"{row['train_loss']:>10.4f} {120 * per_step / 60:>10.1f} "
                  f"{900 * per_step / 60:>10.1f} {1800 * per_step / 60:>12.1f}")

        passes = forward_backward(model, lengths, args.rounds)
        print("\nforward + backward, batch of 4 random sequences (median of "
              f"{args.rounds} rounds)")
        print(f"{'attention':<10} {'length':>7} {'seconds':>8} {'tokens/s':>9}")
        for row in passes:
            print(f"{row['attention']:<10} {row['length']:>7} {row['seconds']:>8.2f} "
                  f"{row['tokens_per_s']:>9.0f}")
        print(f"\nmachine after the run: {machine_load()}")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(
                {"tokens": budget, "sft": sft, "forward_backward": passes}, indent=2) + "\n")


if __name__ == "__main__":
    main()
