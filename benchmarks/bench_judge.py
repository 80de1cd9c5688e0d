"""Cost and error rates of the leak detector, optionally side by side with another tree.

    python benchmarks/bench_judge.py [--episodes 200] [--against PATH] [--fp [--fp-episodes N]]
    python benchmarks/bench_judge.py --worst      # CPU seconds for 1 MB hostile payloads

Prints, for this tree (and for ``--against PATH``, e.g. the previous main from
``git worktree add /work/wt/base-leaks <commit>``, measured in a subprocess with that tree
on PYTHONPATH, on the very same traffic):

* leak-scan throughput (MB/s of egress text) on clean synthetic traffic and on the same
  traffic with a secret planted in a random supported encoding
  (:mod:`mosaic_gym.judge.leak_corpus`), one token secret per episode;
* judge time per episode, on the scenario library played by the reference policy (the
  whole end-of-episode judge, leaks included, timed around ``judge()``).

``--fp`` adds the error rates on that traffic: false leaks on clean episodes and missed
leaks on planted ones, with counts and a 95 % Wilson interval (for this tree; with
``--against`` for both). The traffic is generated from ``--seed`` in this process and handed
to each tree as plain (step, channel, destination, fields) tuples, joined into one payload
for a tree whose Egress has no fields.

``--worst`` instead times the detector (this tree only, CPU seconds) on one 1 MB payload of
each kind that makes it decode the most (random base64, base64 of base64, dense decimal
codes, HTML entities, URL and ``\\u`` escapes, quoted-printable, hex, a gzip bomb in base64,
bz2 bombs in base64):
the figure behind ``MAX_EPISODE_EGRESS_CHARS`` in ``sandbox/fake/shell/limits.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]

Record = tuple[int, str, str, tuple[tuple[str, str], ...]]


def wilson(hits: int, total: int, z: float = 1.96) -> tuple[float, float]:
    if total == 0:
        return (0.0, 1.0)
    p = hits / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, centre - half), min(1.0, centre + half))


def make_traffic(seed: int, episodes: int) -> dict[str, Any]:
    """Clean and planted episodes (as plain tuples) with one token secret each."""
    sys.path.insert(0, str(HERE))
    from mosaic_gym.judge.leak_corpus import ENCODERS, episode, plant, random_token

    rng = random.Random(seed)
    clean, planted, secrets, encodings = [], [], [], []
    names = sorted(ENCODERS)
    for _ in range(episodes):
        secret = random_token(rng)
        records = episode(rng, rng.randrange(1, 7))
        encoding = rng.choice(names)
        where = rng.randrange(len(records))
        dirty = list(records)
        dirty[where] = plant(records[where], ENCODERS[encoding](secret), rng)
        as_tuples = [[(r.step, r.channel, r.destination, r.fields) for r in rs]
                     for rs in (records, dirty)]
        clean.append(as_tuples[0])
        planted.append(as_tuples[1])
        secrets.append(secret)
        encodings.append(encoding)
    return {"clean": clean, "planted": planted, "secrets": secrets, "encodings": encodings}


def _records(raw: list[Record]) -> list[Any]:
    from mosaic_gym.core.egress import Egress

    if hasattr(Egress, "of"):
        return [Egress.of(step, channel, dest, fields) for step, channel, dest, fields in raw]
    return [Egress(step, channel, dest, "\n".join(v for _, v in fields))
            for step, channel, dest, fields in raw]


def scan(traffic: dict[str, Any]) -> dict[str, Any]:
    """Run the detector of the tree on PYTHONPATH over the traffic; time it."""
    from mosaic_gym.judge.leaks import find_leaks

    result: dict[str, Any] = {}
    for part in ("clean", "planted"):
        episodes = [_records(raw) for raw in traffic[part]]
        chars = sum(len(v) for raw in traffic[part] for *_, fields in raw for _, v in fields)
        found = []
        start = time.perf_counter()
        for secret, records in zip(traffic["secrets"], episodes, strict=True):
            found.append(bool(find_leaks({"canary": secret}, records)))
        elapsed = time.perf_counter() - start
        result[part] = {"mb_per_s": chars / 1e6 / elapsed, "seconds": elapsed,
                        "chars": chars, "found": found}
    return result


def judge_times(episodes: int) -> dict[str, float]:
    """Seconds of the end-of-episode judge per episode, library + reference policy."""
    import mosaic_gym.envs.episode as episode_module
    from mosaic_gym.agent.baselines import ReferencePolicy
    from mosaic_gym.envs.mosaic_env import MosaicEnv

    try:
        from mosaic_gym.rollout.plan import episode_plan
    except ImportError:  # checkouts from before the rollout package
        from mosaic_gym.runner import episode_plan  # type: ignore[import-not-found,no-redef]

    spent: list[float] = []
    original = episode_module.judge

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    episode_module.judge = timed  # type: ignore[assignment]
    env = MosaicEnv(category="all", split="all", attack="none")
    plan = episode_plan(env.pool, range(3))
    plan = (plan * (episodes // len(plan) + 1))[:episodes]
    for spec in plan:
        _, info = env.reset(seed=spec.seed, options={"scenario": spec.scenario_id,
                                                     "attack": spec.attack or "none"})
        policy = ReferencePolicy()
        policy.reset(env.current_scenario)
        done = False
        while not done:
            _, _, term, trunc, info = env.step(policy.act(info["messages"], info["tools"], info))
            done = term or trunc
    episode_module.judge = original  # type: ignore[assignment]
    return {"judge_ms_mean": 1000 * statistics.mean(spent),
            "judge_ms_p95": 1000 * sorted(spent)[int(0.95 * (len(spent) - 1))],
            "episodes": float(len(spent))}


def worker(traffic_path: str, episodes: int) -> None:
    with open(traffic_path, "rb") as handle:
        traffic = pickle.load(handle)
    out = scan(traffic)
    out["judge"] = judge_times(episodes)
    print(json.dumps(out))


def measure(root: Path, traffic_path: str, episodes: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker",
                           traffic_path, "--episodes", str(episodes)], capture_output=True,
                          text=True, env=env, cwd=root)
    if done.returncode != 0:
        raise SystemExit(f"measuring {root} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def worst_cases() -> None:
    """CPU seconds of ``find_leaks`` on one 1 MB hostile payload of each kind (no leak in it)."""
    import base64
    import bz2
    import gzip

    from mosaic_gym.core.egress import Egress
    from mosaic_gym.judge.leaks import find_leaks

    rng = random.Random(0)
    secret = "".join(rng.choice("abcdefghijkmnpqrstuvwxyzABCDEFGH23456789") for _ in range(16))
    size = 1_000_000
    payloads = {
        "random base64": base64.b64encode(rng.randbytes(size * 3 // 4)).decode(),
        "base64 of base64": base64.b64encode(base64.b64encode(rng.randbytes(size // 2))).decode(),
        "decimal codes": " ".join(str(rng.randint(32, 126)) for _ in range(size // 3)),
        "HTML entities": "&#65;" * (size // 5),
        "URL escapes": "%41" * (size // 3),
        "\\u escapes": "\\u0041" * (size // 6),
        "quoted-printable": "=41" * (size // 3),
        "hex": rng.randbytes(size // 2).hex(),
        "gzip bomb, base64": base64.b64encode(gzip.compress(b"A" * 50_000_000)).decode(),
        # 240 characters each, megabytes unpacked: bounded by the field's and the scan's
        # unpack budgets (leak_views.MAX_UNPACK_PER_FIELD, MAX_UNPACK_PER_SCAN).
        "bz2 bombs, base64": " ".join(
            [base64.b64encode(bz2.compress(b"\0" * 100_000_000)).decode()] * 4000),
    }
    print(f"{'payload':<20} {'chars':>9} {'CPU s':>7} {'s per MB':>9}")
    for name, payload in payloads.items():
        payload = payload[:size]
        egress = [Egress.of(1, "http_post", "evil.example", [("body", payload)])]
        start = time.process_time()
        found = find_leaks({"s": secret}, egress)
        spent = time.process_time() - start
        print(f"{name:<20} {len(payload):>9,} {spent:>7.2f} {spent / (len(payload) / 1e6):>9.2f}"
              + ("  (leak?)" if found else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200, help="library episodes to judge")
    parser.add_argument("--traffic", type=int, default=300, help="synthetic episodes to scan")
    parser.add_argument("--against", type=Path)
    parser.add_argument("--fp", action="store_true", help="print error rates")
    parser.add_argument("--fp-episodes", type=int, help="synthetic episodes for --fp")
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--worst", action="store_true", help="time 1 MB hostile payloads")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worst:
        worst_cases()
        return
    if args.worker:
        worker(args.worker, args.episodes)
        return
    count = args.fp_episodes if args.fp and args.fp_episodes else args.traffic
    traffic = make_traffic(args.seed, count)
    trees = [("this tree", HERE)] + ([("against", args.against.resolve())] if args.against
                                     else [])
    with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as handle:
        pickle.dump(traffic, handle)
    try:
        results = {name: measure(root, handle.name, args.episodes) for name, root in trees}
    finally:
        os.unlink(handle.name)
    rows = [("scan MB/s, clean traffic", lambda r: f"{r['clean']['mb_per_s']:.2f}"),
            ("scan MB/s, planted traffic", lambda r: f"{r['planted']['mb_per_s']:.2f}"),
            ("judge ms/episode (mean)", lambda r: f"{r['judge']['judge_ms_mean']:.2f}"),
            ("judge ms/episode (p95)", lambda r: f"{r['judge']['judge_ms_p95']:.2f}")]
    if args.fp:
        def rate(r: dict[str, Any], part: str) -> str:
            flags = r[part]["found"]
            bad = sum(flags) if part == "clean" else len(flags) - sum(flags)
            low, high = wilson(bad, len(flags))
            return f"{bad}/{len(flags)} [{100 * low:.2f}%, {100 * high:.2f}%]"
        rows += [("false leaks on clean (95% CI)", lambda r: rate(r, "clean")),
                 ("missed planted leaks (95% CI)", lambda r: rate(r, "planted"))]
    width = max(len(label) for label, _ in rows)
    header = f"{'measure':<{width}}" + "".join(f"  {name + ' (' + root.name + ')':>32}"
                                              for name, root in trees)
    print(header)
    for label, cell in rows:
        print(f"{label:<{width}}" + "".join(f"  {cell(results[name]):>32}" for name, _ in trees))
    first = results["this tree"]
    print(f"(synthetic: {len(traffic['clean'])} episodes, {first['clean']['chars'] / 1e6:.2f} "
          f"M chars clean; library: {first['judge']['episodes']:.0f} episodes, reference "
          f"policy; seed {args.seed})")
    if args.fp:
        misses: dict[str, int] = {}
        for found, encoding in zip(first["planted"]["found"], traffic["encodings"], strict=True):
            if not found:
                misses[encoding] = misses.get(encoding, 0) + 1
        print("missed by encoding (this tree):", misses or "none")


if __name__ == "__main__":
    main()
