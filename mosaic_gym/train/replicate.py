"""``mosaic replicate``: the MOSAIC experiment in miniature, on CPU, in one command.

1. build the tiny offline model (:func:`~mosaic_gym.train.tiny.build_tiny`);
2. SFT it on the ``comply`` baseline's trajectories (:func:`~mosaic_gym.train.sft.run_sft`):
   it learns the action format and comply's unsafe habits;
3. evaluate it on the held-out ``ood`` split (greedy, batched): by default a stratified
   subset of 48 episodes (12 per category, seeded) to fit a 20-minute CPU budget;
   ``eval_episodes=0`` plays all of them;
4. from the SFT model, train **pairwise GRPO** (MOSAIC), **scalar GRPO** (the ablation) and
   **DPO** on oracle-ranked pairs, and evaluate each the same way;
5. print and save the before/after table (``replication.json``, ``replication.png``):
   harm rate, refusal rate on harmful requests, attack success rate, leak rate, benign
   utility, over-refusal and the safety-check token share, with every seed recorded.

The numbers are whatever the run gives: a model of a few million parameters trained for
minutes is not expected to reproduce the paper's effect sizes, and the table says so by
reporting both directions. ``--quick`` is a reduced form (a few steps per stage, a small
evaluation subset) for CI.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

#: Rows of the table: (key in the metrics, label). "safety_token_share" is computed here.
TABLE = [
    ("harm_rate", "harm rate"),
    ("refusal_rate_harmful", "refusal rate on harmful"),
    ("attack_success_rate", "attack success rate"),
    ("leak_rate", "leak rate"),
    ("benign_utility", "benign utility"),
    ("over_refusal", "over-refusal"),
    ("safety_token_share", "safety-token share"),
    ("format_error_rate", "format-error turns"),
]
METHODS = [("sft", "SFT (before)"), ("grpo_pairwise", "GRPO pairwise"),
           ("grpo_scalar", "GRPO scalar"), ("dpo", "DPO")]


@dataclass(frozen=True)
class Plan:
    """Sizes of every stage (the full run and ``--quick`` differ only here)."""

    tiny: dict[str, Any] = field(default_factory=lambda: {
        "hidden_size": 128, "num_layers": 4, "num_heads": 2, "num_kv_heads": 1,
        "intermediate_size": 512})
    """Keyword arguments of ``build_tiny`` (model size: about 1.5M parameters)."""
    sft_seeds: tuple[int, ...] = (0, 1)
    sft_epochs: float = 1.0
    sft_max_steps: int = 200
    sft_learning_rate: float = 3e-3
    sft_limit: int | None = None
    rl_split: str = "train"
    rl_episodes: int = 48
    k: int = 4
    grpo_steps: int = 12
    grpo_groups_per_step: int = 2
    """Episodes per GRPO step (each played k times): batching them speeds up generation."""
    grpo_learning_rate: float = 5e-5
    dpo_episodes: int = 24
    dpo_steps: int = 16
    dpo_learning_rate: float = 5e-5
    max_new_tokens: int = 128
    env_max_steps: int = 8
    temperature: float = 1.0
    eval_split: str = "ood"
    eval_limit: int | None = 48
    eval_batch: int = 48


FULL = Plan()
QUICK = replace(FULL, tiny={"hidden_size": 64, "num_layers": 2, "num_heads": 2,
                            "num_kv_heads": 1, "intermediate_size": 128},
                sft_seeds=(0,), sft_limit=48, sft_max_steps=12, rl_episodes=4, grpo_steps=2,
                grpo_groups_per_step=1,
                dpo_episodes=3, dpo_steps=2, max_new_tokens=64, env_max_steps=4,
                eval_limit=12, eval_batch=12)


# -- evaluation -----------------------------------------------------------------------------

def evaluation_plan(split: str = "ood", *, seeds: Sequence[int] = (0,), attack: str = "all",
                    limit: int | None = None, seed: int = 0) -> list[Any]:
    """The episodes of an evaluation: ``runner.episode_plan`` over ``split``.

    With ``limit``, a seeded subset (in plan order) drawn round-robin over the categories
    (benign, harmful, injection, privacy), so each stays represented in a small sample.
    """
    from mosaic_gym.envs.mosaic_env import MosaicEnv
    from mosaic_gym.runner import episode_plan

    env = MosaicEnv(split=split, attack="none")
    try:
        plan = episode_plan(env.pool, list(seeds), attack=attack)
        category = {variant.id: variant.category for variant in env.pool}
    finally:
        env.close()
    if limit is None or limit >= len(plan):
        return plan
    rng = random.Random(seed)
    buckets: dict[str, list[int]] = {}
    for index, spec in enumerate(plan):
        buckets.setdefault(category[spec.scenario_id], []).append(index)
    for indices in buckets.values():
        rng.shuffle(indices)
    chosen: list[int] = []
    while len(chosen) < limit:
        for name in sorted(buckets):
            if buckets[name] and len(chosen) < limit:
                chosen.append(buckets[name].pop())
    return [plan[i] for i in sorted(chosen)]


def play_batched(policy: Any, plan: Sequence[Any], *, slots: int = 32,
                 max_steps: int | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Play every episode of ``plan`` with ``policy.act_batch``, ``slots`` at a time.

    Returns the trajectory records in plan order.
    """
    from rich.progress import Progress

    from mosaic_gym.envs.trl_adapter import MosaicTRLEnv

    envs = [MosaicTRLEnv(max_steps=max_steps) for _ in range(min(slots, len(plan)))]
    jobs: list[int | None] = [None] * len(envs)
    queue = list(range(len(plan)))[::-1]
    records: list[dict[str, Any] | None] = [None] * len(plan)
    try:
        with Progress(disable=not progress) as bar:
            task = bar.add_task(f"playing {len(plan)} episodes", total=len(plan))
            while queue or any(job is not None for job in jobs):
                for slot, env in enumerate(envs):
                    if jobs[slot] is None and queue:
                        jobs[slot] = index = queue.pop()
                        spec = plan[index]
                        env.reset(scenario_id=spec.scenario_id, attack=spec.attack,
                                  seed=spec.seed)
                live = [slot for slot, job in enumerate(jobs) if job is not None]
                actions = policy.act_batch([(envs[s].messages, envs[s].tools) for s in live])
                for slot, action in zip(live, actions, strict=True):
                    if envs[slot].act(action):
                        records[jobs[slot]] = envs[slot].trajectory()  # type: ignore[index]
                        jobs[slot] = None
                        bar.advance(task)
    finally:
        for env in envs:
            env.close()
    return [r for r in records if r is not None]


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Metrics of a set of trajectory records: ``judge.metrics`` per category, plus the
    safety-check token share and the share of malformed turns (over all episodes)."""
    from mosaic_gym.judge.metrics import by_category

    metrics = by_category([r["outcome"] for r in records])
    tokens = sum(r["tokens"]["assistant"] for r in records)
    safety = sum(r["tokens"]["safety_check"] for r in records)
    turns = sum(len(r["steps"]) for r in records)
    invalid = sum(1 for r in records for s in r["steps"] if s["kind"] == "invalid")
    metrics["all"]["safety_token_share"] = safety / tokens if tokens else 0.0
    metrics["all"]["format_error_rate"] = invalid / turns if turns else 0.0
    metrics["all"]["mean_turns"] = turns / len(records) if records else 0.0
    return metrics


def evaluate_model(model: str | Path, plan: Sequence[Any], *, max_new_tokens: int = 128,
                   max_steps: int | None = None, batch: int = 32, seed: int = 0,
                   out: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Greedy, batched evaluation of a model folder over ``plan``; metrics (and JSONL)."""
    from mosaic_gym.agent.backends.transformers_backend import TransformersPolicy

    policy = TransformersPolicy(str(model), sampling={"temperature": 0.0, "seed": seed,
                                                      "max_new_tokens": max_new_tokens},
                                batch_size=batch, dtype="float32")
    records = play_batched(policy, plan, slots=batch, max_steps=max_steps, progress=progress)
    if out is not None:
        with Path(out).open("w", encoding="utf-8") as sink:
            for record in records:
                sink.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    return summarize(records)


# -- the table ------------------------------------------------------------------------------

def table_rows(results: dict[str, dict[str, Any]]) -> list[tuple[str, list[float | None]]]:
    """(label, value per method) for each table row, methods in :data:`METHODS` order."""
    return [(label, [results[m]["all"].get(key) if m in results else None
                     for m, _ in METHODS]) for key, label in TABLE]


def print_table(results: dict[str, dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric (ood, all episodes)")
    for method, label in METHODS:
        n = int(results[method]["all"]["episodes"]) if method in results else 0
        table.add_column(f"{label} (n={n})", justify="right")
    for label, values in table_rows(results):
        table.add_row(label, *["—" if v is None else f"{100 * v:5.1f}%" for v in values])
    Console(width=140).print(table)


def plot_table(results: dict[str, dict[str, Any]], path: Path, title: str) -> Path:
    """Grouped bar chart of the table (one group per metric, one bar per method)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table_rows(results)
    fig, ax = plt.subplots(figsize=(12, 4.8))
    width = 0.8 / len(METHODS)
    for j, (_method, label) in enumerate(METHODS):
        xs = [i + (j - (len(METHODS) - 1) / 2) * width for i in range(len(rows))]
        ys = [100 * (values[j] or 0.0) for _, values in rows]
        bars = ax.bar(xs, ys, width, label=label)
        ax.bar_label(bars, fmt="%.0f", fontsize=6, padding=1)
    ax.set_xticks(range(len(rows)), [label for label, _ in rows], rotation=20, ha="right")
    ax.set_ylabel("% of episodes (of turns / tokens for the last two)")
    ax.set_ylim(0, 105)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- the run --------------------------------------------------------------------------------

def replicate(out: str | Path = "runs/replicate", *, quick: bool = False, seed: int = 0,
              plan: Plan | None = None, eval_episodes: int | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Run the whole replication into ``out``; return the saved document.

    Each stage's model is kept under ``out/<stage>``; a stage whose folder already holds a
    model is reused (delete it to retrain), so an interrupted run resumes.
    """
    from mosaic_gym.train.dpo import run_dpo
    from mosaic_gym.train.grpo import run_grpo
    from mosaic_gym.train.sft import run_sft
    from mosaic_gym.train.tiny import build_tiny

    plan = plan or (QUICK if quick else FULL)
    if eval_episodes is not None:
        if eval_episodes < 0:
            raise ValueError(f"eval_episodes must be >= 0 (0 = all), got {eval_episodes}")
        plan = replace(plan, eval_limit=eval_episodes or None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def stage(name: str, build: Any) -> Path:
        path = out / name
        if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
            if progress:
                print(f"[{name}] reusing {path}")
            return path
        if progress:
            print(f"[{name}] training into {path}")
        begin = time.perf_counter()
        build(path)
        timings[name] = round(time.perf_counter() - begin, 1)
        return path

    base = stage("base", lambda p: build_tiny(p, seed=seed, **plan.tiny))
    sft = stage("sft", lambda p: run_sft(base, p, policy="comply", split="train",
                                         seeds=plan.sft_seeds, epochs=plan.sft_epochs,
                                         max_steps=plan.sft_max_steps, seed=seed,
                                         learning_rate=plan.sft_learning_rate,
                                         limit=plan.sft_limit, progress=progress))
    common: dict[str, Any] = {"split": plan.rl_split, "seeds": [seed], "k": plan.k, "seed": seed,
              "temperature": plan.temperature, "max_new_tokens": plan.max_new_tokens,
              "env_max_steps": plan.env_max_steps, "quiet": not progress}
    models = {"sft": sft}
    for reward in ("pairwise", "scalar"):
        models[f"grpo_{reward}"] = stage(f"grpo_{reward}", lambda p, r=reward: run_grpo(
            sft, p, reward=r, limit=plan.rl_episodes, max_steps=plan.grpo_steps,
            trl={"learning_rate": plan.grpo_learning_rate,
                 "per_device_train_batch_size": plan.k * plan.grpo_groups_per_step},
            **common))
    skipped: dict[str, str] = {}
    try:
        models["dpo"] = stage("dpo", lambda p: run_dpo(
            sft, p, limit=plan.dpo_episodes, max_steps=plan.dpo_steps,
            trl={"learning_rate": plan.dpo_learning_rate, "per_device_train_batch_size": 1,
                 "max_length": 2048}, num_envs=plan.eval_batch, **common))
    except ValueError as exc:  # every collected group tied: nothing to prefer
        if "no preference pairs" not in str(exc):
            raise
        skipped["dpo"] = str(exc)
        print(f"[dpo] not trained: {exc}")

    episodes = evaluation_plan(plan.eval_split, limit=plan.eval_limit, seed=seed)
    results: dict[str, dict[str, Any]] = {}
    for method, _label in METHODS:
        if method not in models:
            continue
        begin = time.perf_counter()
        if progress:
            print(f"[eval] {method} on {len(episodes)} {plan.eval_split} episodes")
        results[method] = evaluate_model(models[method], episodes,
                                         max_new_tokens=plan.max_new_tokens,
                                         max_steps=plan.env_max_steps, batch=plan.eval_batch,
                                         seed=seed, out=out / f"eval_{method}.jsonl",
                                         progress=progress)
        timings[f"eval_{method}"] = round(time.perf_counter() - begin, 1)
    timings["total"] = round(time.perf_counter() - started, 1)

    title = (f"mosaic replicate{' --quick' if quick else ''}: tiny model, "
             f"{len(episodes)} {plan.eval_split} episodes, seed {seed}")
    document = {
        "title": title, "quick": quick, "seed": seed,
        "seeds": {"model_init": seed, "sft": seed, "sft_episode_seeds": list(plan.sft_seeds),
                  "rl_episode_seeds": [seed], "rl_sampling": seed, "eval_episode_seeds": [0],
                  "eval_subset": seed if plan.eval_limit else None},
        "plan": asdict(plan), "evaluation": {"split": plan.eval_split, "episodes": len(episodes),
                                             "decoding": "greedy"},
        "table": {label: dict(zip([m for m, _ in METHODS], values, strict=True))
                  for label, values in table_rows(results)},
        "metrics": results, "seconds": timings, "skipped": skipped,
        "models": {name: str(path) for name, path in models.items()},
    }
    (out / "replication.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    plot_table(results, out / "replication.png", title)
    print_table(results, title)
    print(f"wrote {out / 'replication.json'} and {out / 'replication.png'} "
          f"({timings['total']:.0f} s)")
    return document
