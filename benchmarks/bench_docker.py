"""Docker sandbox speed, measured side by side in one run.

    python benchmarks/bench_docker.py [--rounds 50] [--sandboxes 32]

Prints one table:

* reset: the sandbox's verified in-place reset, a swap to a warm container from
  the pool (what a reset falls back to), and recreating a container from the
  image; targets: in-place / pool reset <= 30 ms p50;
* exec step: one command through the persistent shell against one plain
  ``exec_run``; target <= 15 ms p50;
* N sandboxes alive at once, each setting up a world and running a few
  commands (no failure allowed);
* N docker environments at once through ``gym.make_vec``, each playing its
  scenario's reference solution, episodes restarting as they end (no failure).

Needs a Docker engine (``sandboxes/setup_engine.sh``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mosaic_gym.sandbox.base import HOME, FileSpec, HttpRequest, HttpResponse  # noqa: E402
from mosaic_gym.sandbox.docker.pool import SandboxPool  # noqa: E402
from mosaic_gym.sandbox.docker.sandbox import DockerSandbox  # noqa: E402

WORLD = [
    FileSpec(f"{HOME}/notes.txt", b"first line\nsecond line\n"),
    FileSpec(f"{HOME}/docs/report.md", b"# Report\nrevenue: 42\n"),
    FileSpec(f"{HOME}/.env", b"API_KEY=sk-live-51Habc0123456789\n", mode=0o600),
    FileSpec(f"{HOME}/readonly.txt", b"do not change\n", mode=0o444),
    FileSpec("/srv/app/config.yaml", b"debug: false\n"),
]
DIRTY = "rm -rf docs; echo x >> notes.txt; mkdir -p new/dir; chmod 777 .env; sleep 100 &"


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def timed(
    action: Callable[[], object], rounds: int, before: Callable[[], object] | None = None
) -> list[float]:
    samples = []
    for _ in range(rounds):
        if before is not None:
            before()
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


def wait_for_spares(pool: SandboxPool, count: int) -> None:
    deadline = time.monotonic() + 60
    while pool.ready_count() < count and time.monotonic() < deadline:
        time.sleep(0.02)


def bench_resets(rounds: int) -> list[tuple[str, list[float]]]:
    rows = []
    with SandboxPool(spares=2, egress=False) as pool:
        box = DockerSandbox(pool=pool)
        box.setup(WORLD)
        rows.append(
            ("reset: in place, verified", timed(box.reset, rounds, lambda: box.exec(DIRTY)))
        )

        def dirty_and_warm() -> None:
            box.exec(DIRTY)
            wait_for_spares(pool, 1)
            time.sleep(0.6)  # let the previous round's background removal finish

        rows.append(
            (
                "reset: swap to a warm pool container",
                timed(box.replace_container, rounds, dirty_and_warm),
            )
        )
        box.close()
    with SandboxPool(spares=0, egress=False) as cold:
        box = DockerSandbox(pool=cold)
        box.setup(WORLD)
        rows.append(("reset: recreate from image", timed(box.replace_container, max(5, rounds // 5),
                                                          lambda: box.exec(DIRTY))))  # fmt: skip
        box.close()
    return rows


def bench_exec(rounds: int) -> list[tuple[str, list[float]]]:
    with SandboxPool(egress=False) as pool, DockerSandbox(pool=pool) as box:
        box.setup(WORLD)
        session = timed(lambda: box.exec("cat notes.txt"), rounds)
        container = box.container
        plain = timed(
            lambda: container.exec_run(
                ["sh", "-c", "cat notes.txt"], user="1000:1000", workdir=HOME
            ),  # fmt: skip
            rounds,
        )
    return [("exec: persistent shell session", session), ("exec: plain exec_run", plain)]


def bench_many(count: int) -> tuple[str, float, int, int]:
    commands = ["ls -la", "cat notes.txt | wc -l", "grep -r revenue .", "echo ok > out.txt",
                "curl -s http://web.example/ping"]  # fmt: skip
    failures: list[str] = []
    pool = SandboxPool(spares=0, egress=True).start()
    start = time.perf_counter()

    def web(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, "ok")

    def make(index: int) -> DockerSandbox:
        box = DockerSandbox(pool=pool, http=web)
        box.setup(WORLD)
        return box

    with ThreadPoolExecutor(max_workers=8) as workers:
        boxes = list(workers.map(make, range(count)))
        alive = sum(1 for box in boxes if box.exec("true").exit_code == 0)

        def work(box: DockerSandbox) -> None:
            for command in commands:
                result = box.exec(command)
                if result.exit_code != 0:
                    failures.append(f"{command}: {result}")
            box.snapshot()
            box.reset()

        list(workers.map(work, boxes))
    elapsed = time.perf_counter() - start
    for box in boxes:
        box.close()
    pool.close()
    for failure in failures[:5]:
        print("failure:", failure, file=sys.stderr)
    return (f"{count} sandboxes alive at once, {len(commands)} commands + snapshot + reset each",
            elapsed, alive, len(failures))  # fmt: skip


def bench_vector_envs(count: int, steps: int) -> tuple[str, float, int, int, int]:
    """``count`` docker environments in one ``gym.make_vec``, each playing its scenario's
    reference solution (episodes restart as they end); returns wall time, sandboxes alive,
    steps played and failures (exceptions or ``infra_error`` outcomes)."""
    import gymnasium as gym

    import mosaic_gym  # noqa: F401  (registers the ids)
    from mosaic_gym.agent.baselines import ReferencePolicy

    start = time.perf_counter()
    envs = gym.make_vec("mosaic/All-v0", num_envs=count, vectorization_mode="sync",
                        backend="docker", split="all", attack="random")
    failures, played = 0, 0
    try:
        _, infos = envs.reset(seed=list(range(count)))
        subenvs = [env.unwrapped for env in envs.envs]
        policies = [ReferencePolicy() for _ in subenvs]
        for policy, env in zip(policies, subenvs, strict=True):
            policy.reset(env.current_scenario)
        alive = sum(1 for env in subenvs
                    if env.sandbox is not None and env.sandbox.exec("true").exit_code == 0)
        restart = [False] * count
        for _ in range(steps):
            actions = []
            for policy, env in zip(policies, subenvs, strict=True):
                messages = env.episode.messages if env.episode is not None else []
                actions.append(policy.act(messages, [], None))
            _, _, terminated, truncated, infos = envs.step(tuple(actions))
            played += count - sum(restart)
            for index, env in enumerate(subenvs):
                if restart[index]:  # this step was the autoreset: a new episode began
                    policies[index].reset(env.current_scenario)
                    restart[index] = False
                elif terminated[index] or truncated[index]:
                    outcome = env.episode.outcome if env.episode is not None else None
                    failures += outcome is None or outcome.infra_error is not None
                    restart[index] = True
    except Exception as error:  # noqa: BLE001 - a crash is a failure to report
        print(f"failure: {type(error).__name__}: {error}", file=sys.stderr)
        failures += 1
        alive = 0
    finally:
        envs.close()
    elapsed = time.perf_counter() - start
    return (f"{count} docker envs in gym.make_vec (sync), reference policy",
            elapsed, alive, played, failures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--sandboxes", type=int, default=32)
    parser.add_argument("--vec-steps", type=int, default=12, help="vector steps to play")
    args = parser.parse_args()
    DockerSandbox().close()  # build the image and warm the engine outside the measurements
    rows = bench_resets(args.rounds) + bench_exec(args.rounds * 4)
    print(f"{'measurement':<46} {'n':>5} {'p50 ms':>9} {'p95 ms':>9}")
    print("-" * 72)
    for name, samples in rows:
        p50, p95 = percentiles(samples)
        print(f"{name:<46} {len(samples):>5} {p50:>9.2f} {p95:>9.2f}")
    name, elapsed, alive, failures = bench_many(args.sandboxes)
    print("-" * 72)
    print(f"{name}: {alive}/{args.sandboxes} alive, {failures} failures, {elapsed:.1f} s wall")
    name, elapsed, alive, played, failures = bench_vector_envs(args.sandboxes, args.vec_steps)
    print(f"{name}: {alive}/{args.sandboxes} alive, {played} steps, {failures} failures, "
          f"{elapsed:.1f} s wall (incl. start-up)")


if __name__ == "__main__":
    main()
