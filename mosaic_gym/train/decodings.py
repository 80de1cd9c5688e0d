"""One model, several decodings, the same episodes: which constraint helps, measured.

``python -m mosaic_gym.train.decodings --model DIR --decodings copy,span --out DIR``
evaluates the model folder once per decoding (``false``, ``grammar``, ``copy``, ``span``:
see :func:`~mosaic_gym.agent.models.constrained.decoding_mode`) on one episode plan with
one sampling seed, so the evaluations differ only in the decoding. It writes
``eval_<decoding>.jsonl`` per decoding and ``decodings.json`` (each decoding's metrics with
95 % bootstrap intervals, the seconds each took, and every decoding paired against the
first on the shared episodes, with McNemar's test), and prints the table. A finished
evaluation file that covers exactly the planned episodes is re-read, so a stopped run
resumes. The plan is the replication's ``heldout`` one (the training variants at unseen
seeds) unless ``--split`` names another.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mosaic_gym.train.replicate import (
    HELDOUT,
    TABLE,
    _kept_evaluation,
    evaluate_model,
    evaluation_plan,
    records_metrics,
)

DECODINGS = ("false", "grammar", "copy", "span")


def compare_decodings(model: str | Path, decodings: Sequence[str], out: str | Path, *,
                      split: str = HELDOUT, seeds: Sequence[int] = (1000, 1001),
                      episodes: int | None = 200, seed: int = 0, temperature: float = 0.7,
                      max_new_tokens: int = 128, max_steps: int = 8, batch: int = 48,
                      resamples: int = 1000, progress: bool = True) -> dict[str, Any]:
    """Evaluate ``model`` under each decoding on the same plan; see the module docstring."""
    from mosaic_gym.report.compare import compare_files

    decodings = list(dict.fromkeys(decodings))
    unknown = [d for d in decodings if d not in DECODINGS]
    if unknown or len(decodings) < 2:
        raise ValueError(f"give at least two decodings out of {', '.join(DECODINGS)} "
                         f"(got {', '.join(decodings) or 'none'})")
    if not (Path(model) / "config.json").is_file():
        raise FileNotFoundError(f"{model}: not a model folder (no config.json)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = evaluation_plan(split, seeds=seeds, limit=episodes, seed=seed)
    metrics: dict[str, Any] = {}
    seconds: dict[str, float | None] = {}
    files: dict[str, Path] = {}
    for decoding in decodings:
        path = files[decoding] = out / f"eval_{decoding}.jsonl"
        kept = _kept_evaluation(path, plan)
        if kept is not None:
            metrics[decoding] = records_metrics(kept, resamples=resamples, seed=seed)
            seconds[decoding] = None  # re-read, not timed
            continue
        begin = time.perf_counter()
        constrained: bool | str = {"false": False, "grammar": True}.get(decoding, decoding)
        metrics[decoding] = evaluate_model(
            model, plan, max_new_tokens=max_new_tokens, max_steps=max_steps, batch=batch,
            seed=seed, temperature=temperature, out=path, progress=progress,
            resamples=resamples, constrained=constrained)
        seconds[decoding] = round(time.perf_counter() - begin, 1)
    paired = compare_files(files, decodings[0], seed=seed, quiet=not progress)
    document = {
        "model": str(model), "split": split, "seeds": list(seeds), "episodes": len(plan),
        "sampling": {"temperature": temperature, "seed": seed, "max_new_tokens": max_new_tokens,
                     "max_steps": max_steps},
        "decodings": decodings, "seconds": seconds,
        "table": {label: {d: metrics[d]["all"]["intervals"].get(key) for d in decodings}
                  for key, label in TABLE},
        "paired_vs_first": paired,
    }
    (out / "decodings.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    if progress:
        print_decodings(document)
    return document


def _cell(estimate: dict[str, Any] | None) -> str:
    if not estimate or estimate.get("value") is None:
        return "—"
    low, high = estimate.get("low"), estimate.get("high")
    bounds = f" [{100 * low:.0f}, {100 * high:.0f}]" if low is not None else ""
    return f"{100 * estimate['value']:.1f}{bounds} (n {estimate['n']})"


def print_decodings(document: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{document['model']} on {document['episodes']} {document['split']} "
                        f"episodes, % [95 % bootstrap interval]")
    table.add_column("metric")
    for decoding in document["decodings"]:
        spent = document["seconds"].get(decoding)
        table.add_column(decoding + (f" ({spent:.0f} s)" if spent is not None else ""),
                         justify="right")
    for label, row in document["table"].items():
        table.add_row(label, *(_cell(row.get(d)) for d in document["decodings"]))
    Console(width=200).print(table)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a model folder (an SFT or RL output)")
    parser.add_argument("--decodings", default="copy,span",
                        help=f"comma-separated, the first is the baseline ({', '.join(DECODINGS)})")
    parser.add_argument("--out", required=True, help="folder for the JSONL files and the table")
    parser.add_argument("--split", default=HELDOUT)
    parser.add_argument("--seeds", default="1000,1001", help="episode seeds of the plan")
    parser.add_argument("--episodes", type=int, default=200, help="stratified subset size")
    parser.add_argument("--seed", type=int, default=0, help="subset and sampling seed")
    parser.add_argument("--temperature", type=float, default=0.7, help="0 for greedy")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=48)
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    try:
        compare_decodings(args.model, [d.strip() for d in args.decodings.split(",") if d.strip()],
                          args.out, split=args.split, seeds=seeds, episodes=args.episodes,
                          seed=args.seed, temperature=args.temperature,
                          max_new_tokens=args.max_new_tokens, max_steps=args.max_steps,
                          batch=args.batch)
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
