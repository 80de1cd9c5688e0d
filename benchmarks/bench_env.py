"""Fake-backend speed: import time, reset time and steps per second, optionally side by side.

    python benchmarks/bench_env.py [--episodes 400] [--against PATH] [--rounds 3]

Prints one table, all rows measured in this run. "steps/s (env only)" times ``env.step``
alone on pre-rendered reference actions (the end-of-episode judge included); "steps/s (with
policy)" includes the scripted policy choosing them.

``--against PATH`` measures another checkout of mosaic-gym too (e.g. the previous main, from
``git worktree add /tmp/base <commit>``): each tree is measured in its own subprocess, the
two alternating ``--rounds`` times so that load from other processes hits both alike, and
the table shows the median of the rounds for each tree and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def import_time(root: Path, repeats: int = 5) -> float:
    code = ("import time; t = time.perf_counter(); import mosaic_gym; "
            "print(time.perf_counter() - t)")
    env = {**os.environ, "PYTHONPATH": str(root)}
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True, env=env, cwd=root).stdout)
            for _ in range(repeats)]
    return statistics.median(runs)


def measure(episodes: int) -> dict[str, float]:
    """Measure the tree this process imports mosaic_gym from."""
    from mosaic_gym.agent.baselines import ReferencePolicy
    from mosaic_gym.envs.mosaic_env import MosaicEnv

    try:
        from mosaic_gym.rollout.plan import episode_plan
    except ImportError:  # checkouts from before the rollout package
        from mosaic_gym.runner import episode_plan  # type: ignore[import-not-found,no-redef]

    env = MosaicEnv(category="all", split="all", attack="none")
    plan = episode_plan(env.pool, range(3))
    plan = (plan * (episodes // len(plan) + 1))[:episodes]

    def options(spec: object) -> dict[str, str]:
        return {"scenario": spec.scenario_id, "attack": spec.attack or "none"}  # type: ignore[attr-defined]

    # Pre-render every episode's actions with the reference policy.
    scripts = []
    for spec in plan:
        _, info = env.reset(seed=spec.seed, options=options(spec))
        policy = ReferencePolicy()
        policy.reset(env.current_scenario)
        actions = []
        done = False
        while not done:
            action = policy.act(info["messages"], info["tools"], info)
            actions.append(action)
            _, _, term, trunc, info = env.step(action)
            done = term or trunc
        scripts.append((spec, actions))

    reset_times, step_time, steps = [], 0.0, 0
    for spec, actions in scripts:
        start = time.perf_counter()
        env.reset(seed=spec.seed, options=options(spec))
        reset_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        for action in actions:
            env.step(action)
        step_time += time.perf_counter() - start
        steps += len(actions)

    loop_start = time.perf_counter()
    loop_steps = 0
    for spec, _ in scripts:
        _, info = env.reset(seed=spec.seed, options=options(spec))
        policy = ReferencePolicy()
        policy.reset(env.current_scenario)
        done = False
        while not done:
            _, _, term, trunc, info = env.step(policy.act(info["messages"], info["tools"], info))
            loop_steps += 1
            done = term or trunc
    loop_time = time.perf_counter() - loop_start
    reset_times.sort()
    return {"reset_p50_ms": 1000 * reset_times[len(reset_times) // 2],
            "reset_p95_ms": 1000 * reset_times[int(len(reset_times) * 0.95)],
            "steps_per_s": steps / step_time, "step_us": 1e6 * step_time / steps,
            "policy_steps_per_s": loop_steps / loop_time,
            "episodes": float(len(scripts)), "steps": float(steps)}


ROWS = [("reset p50 (ms)", "reset_p50_ms", "{:.3f}"), ("reset p95 (ms)", "reset_p95_ms", "{:.3f}"),
        ("steps/s (env only, 1 core)", "steps_per_s", "{:,.0f}"),
        ("step mean (us)", "step_us", "{:.1f}"),
        ("steps/s (with scripted policy)", "policy_steps_per_s", "{:,.0f}"),
        ("episodes / steps measured", None, "")]


def _subprocess_measure(root: Path, episodes: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--json",
                          "--episodes", str(episodes)], capture_output=True, text=True,
                         check=True, env=env, cwd=root).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=400)
    parser.add_argument("--against", type=Path, help="another checkout to measure alongside")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measure(args.episodes)))
        return
    trees = [("this tree", HERE)] + ([("against", args.against.resolve())] if args.against
                                     else [])
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
    for _ in range(args.rounds if args.against else 1):
        for name, root in trees:
            runs[name].append(_subprocess_measure(root, args.episodes))
    medians = {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
               for name, rs in runs.items()}
    imports = {name: import_time(root) for name, root in trees}
    header = ["measure"] + [f"{name} ({root.name})" for name, root in trees]
    if args.against:
        header.append("ratio")
    table = [("import mosaic_gym (median of 5, s)",
              [f"{imports[name]:.3f}" for name, _ in trees], "")]
    for label, key, fmt in ROWS:
        if key is None:
            cells = [f"{medians[n]['episodes']:.0f} / {medians[n]['steps']:.0f}" for n, _ in trees]
            table.append((label, cells, ""))
            continue
        cells = [fmt.format(medians[name][key]) for name, _ in trees]
        ratio = (f"{medians['this tree'][key] / medians['against'][key]:.2f}x"
                 if args.against and medians["against"][key] else "")
        table.append((label, cells, ratio))
    width = max(len(row[0]) for row in table)
    cols = [max(len(h), 12) for h in header[1:]]
    print("  ".join([f"{header[0]:<{width}}"] + [f"{h:>{c}}" for h, c in zip(header[1:], cols,
                                                                            strict=False)]))
    for label, cells, ratio in table:
        parts = [f"{label:<{width}}"] + [f"{c:>{w}}" for c, w in zip(cells, cols, strict=False)]
        if args.against:
            parts.append(f"{ratio:>{cols[-1]}}")
        print("  ".join(parts))
    if args.against:
        print(f"(median of {args.rounds} alternating rounds per tree; steps include the "
              "end-of-episode judge)")


if __name__ == "__main__":
    main()
