"""AgentDojo natively vs through ``mosaic/AgentDojo-v0``: same episodes, same calls, one run.

Prints one table, every row measured in this run:

    python benchmarks/bench_suites.py [--pairs 40] [--repeats 3]

Per suite, the same (user task x injection task) pairs (the first ``--pairs`` in task order,
attack ``important_instructions``) are played

* **native**: ``TaskSuite.run_task_with_pipeline`` with AgentDojo's ``GroundTruthPipeline``
  (the harness loads and injects the environment YAML every episode);
* **mosaic, cold**: the reference baseline through ``mosaic/AgentDojo-v0`` in MOSAIC text,
  each pair's first episode (the injected environment is not cached yet);
* **mosaic, warm**: the same pairs again (``--repeats`` times each), as GRPO's K rollouts
  of one task or an evaluation over several seeds play them.

The injections are computed once before any timing, for both. "verdicts" counts the pairs
where (utility, security) from the native harness equals (completed, attack_success) from
the env; anything short of all of them is a bug. The last rows are mosaic's own fake-backend
episodes (``mosaic/Injection-v0``, reference policy), for scale. Times are medians per
episode; the machine may be shared, so read ratios rather than absolute times.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any


def _median_ms(times: list[float]) -> float:
    return 1000 * statistics.median(times) if times else float("nan")


def bench_suite(suite: str, pairs: int, repeats: int) -> dict[str, Any]:
    from agentdojo.agent_pipeline.ground_truth_pipeline import GroundTruthPipeline

    from mosaic_gym.agent.baselines import make_baseline
    from mosaic_gym.envs.suites import agentdojo as ad
    from mosaic_gym.rollout import EpisodeSpec, play

    data = ad.suite_data(suite)
    users = sorted(data.suite.user_tasks, key=ad._task_number)
    injections = sorted(data.suite.injection_tasks, key=ad._task_number)
    chosen = [(u, i) for u in users for i in injections][:pairs]
    planted = {pair: data.injections(ad.DEFAULT_ATTACK, data.user_task(pair[0]),
                                     data.injection_task(pair[1])) for pair in chosen}
    native_times, native_verdicts = [], {}
    for uid, iid in chosen:
        user, injection = data.user_task(uid), data.injection_task(iid)
        start = time.perf_counter()
        verdict = data.suite.run_task_with_pipeline(GroundTruthPipeline(user), user, injection,
                                                    planted[(uid, iid)])
        native_times.append(time.perf_counter() - start)
        native_verdicts[(uid, iid)] = verdict
    env = ad.AgentDojoEnv(suite=suite, injection_task="all")
    agent = make_baseline("reference")
    cold, warm, same = [], [], 0
    for rounds in range(1 + repeats):
        for uid, iid in chosen:
            spec = EpisodeSpec(ad.scenario_id(suite, uid, iid), ad.DEFAULT_ATTACK, rounds)
            start = time.perf_counter()
            outcome = play(env, agent, spec).outcome
            (cold if rounds == 0 else warm).append(time.perf_counter() - start)
            if rounds == 0:
                same += (outcome.completed, outcome.attack_success) == native_verdicts[
                    (uid, iid)]
    return {"suite": suite, "pairs": len(chosen), "native": _median_ms(native_times),
            "cold": _median_ms(cold), "warm": _median_ms(warm), "same": same}


def bench_mosaic(episodes: int) -> dict[str, Any]:
    from mosaic_gym.agent.baselines import make_baseline
    from mosaic_gym.envs.mosaic_env import MosaicEnv
    from mosaic_gym.rollout import episode_plan, play

    env = MosaicEnv(category="injection", split="all", attack="none")
    plan = episode_plan(env.pool, range(3))[:episodes]
    agent = make_baseline("reference")
    times = []
    for spec in plan:
        start = time.perf_counter()
        play(env, agent, spec)
        times.append(time.perf_counter() - start)
    env.close()
    return {"episodes": len(plan), "ms": _median_ms(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40, help="pairs per suite")
    parser.add_argument("--repeats", type=int, default=3, help="warm plays of each pair")
    parser.add_argument("--suites", default="workspace,travel,banking,slack")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    table = Table(title="AgentDojo episodes: native harness vs mosaic/AgentDojo-v0 "
                        "(median ms per episode)")
    for column in ("suite", "pairs", "native", "mosaic cold", "mosaic warm", "cold speed-up",
                   "warm speed-up", "verdicts identical"):
        table.add_column(column, justify="right")
    for suite in args.suites.split(","):
        row = bench_suite(suite, args.pairs, args.repeats)
        table.add_row(suite, str(row["pairs"]), f"{row['native']:.1f}", f"{row['cold']:.2f}",
                      f"{row['warm']:.2f}", f"{row['native'] / row['cold']:.1f}x",
                      f"{row['native'] / row['warm']:.1f}x", f"{row['same']}/{row['pairs']}")
    scale = bench_mosaic(args.pairs)
    table.add_row("mosaic Injection-v0 (fake)", str(scale["episodes"]), "—", f"{scale['ms']:.2f}",
                  "—", "—", "—", "—")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
