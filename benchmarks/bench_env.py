"""Fake-backend speed: import time, reset time and steps per second.

Prints one table, all rows measured in this run:

    python benchmarks/bench_env.py [--episodes 400]

"steps/s (env only)" times ``env.step`` alone on pre-rendered reference
actions; "steps/s (with policy)" includes the scripted policy choosing them.
The target in the issue is 20,000 steps/s per core on the env side.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def import_time(repeats: int = 5) -> float:
    code = ("import time; t = time.perf_counter(); import mosaic_gym; "
            "print(time.perf_counter() - t)")
    runs = [float(subprocess.run([sys.executable, "-c",
                                  code], capture_output=True, text=True, check=True).stdout)
            for _ in range(repeats)]
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=400)
    args = parser.parse_args()

    from mosaic_gym.agent.baselines import ReferencePolicy
    from mosaic_gym.envs.mosaic_env import MosaicEnv
    from mosaic_gym.rollout.plan import episode_plan

    env = MosaicEnv(category="all", split="all", attack="none")
    plan = episode_plan(env.pool, range(3))
    plan = (plan * (args.episodes // len(plan) + 1))[: args.episodes]

    # Pre-render every episode's actions with the reference policy.
    scripts = []
    for spec in plan:
        _, info = env.reset(seed=spec.seed, options={"scenario": spec.scenario_id,
                                                     "attack": spec.attack or "none"})
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
        options = {"scenario": spec.scenario_id, "attack": spec.attack or "none"}
        start = time.perf_counter()
        env.reset(seed=spec.seed, options=options)
        reset_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        for action in actions:
            env.step(action)
        step_time += time.perf_counter() - start
        steps += len(actions)

    loop_start = time.perf_counter()
    loop_steps = 0
    for spec, _ in scripts:
        options = {"scenario": spec.scenario_id, "attack": spec.attack or "none"}
        _, info = env.reset(seed=spec.seed, options=options)
        policy = ReferencePolicy()
        policy.reset(env.current_scenario)
        done = False
        while not done:
            _, _, term, trunc, info = env.step(policy.act(info["messages"], info["tools"], info))
            loop_steps += 1
            done = term or trunc
    loop_time = time.perf_counter() - loop_start

    reset_times.sort()
    rows = [
        ("import mosaic_gym (median of 5, s)", f"{import_time():.3f}", "< 0.3"),
        ("reset p50 (ms)", f"{1000 * reset_times[len(reset_times) // 2]:.3f}", ""),
        ("reset p95 (ms)", f"{1000 * reset_times[int(len(reset_times) * 0.95)]:.3f}", ""),
        ("steps/s (env only, 1 core)", f"{steps / step_time:,.0f}", ">= 20,000"),
        ("step mean (us)", f"{1e6 * step_time / steps:.1f}", ""),
        ("steps/s (with scripted policy)", f"{loop_steps / loop_time:,.0f}", ""),
        ("episodes / steps measured", f"{len(scripts)} / {steps}", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>12}  target")
    print("-" * (width + 24))
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>12}  {target}")


if __name__ == "__main__":
    main()
