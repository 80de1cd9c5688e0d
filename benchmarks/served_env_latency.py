"""Latency of an episode served over OpenEnv (loopback WebSocket) against the same episodes
played in process. Prints a table; run: ``python benchmarks/served_env_latency.py [N]``.

The agent's turns are the 'comply' baseline's, recorded in process first, so both sides
play identical episodes and the difference is the transport (JSON over the socket, the
chat and tool schemas resent with every observation). Needs the ``openenv`` extra.
"""

from __future__ import annotations

import socket
import statistics
import sys
import threading
import time

import uvicorn

from mosaic_gym.agent.baselines import make_baseline
from mosaic_gym.bridges.openenv import RemoteMosaicEnv, create_server_app
from mosaic_gym.envs.registration import make_env
from mosaic_gym.rollout import episode_plan, play


def main(episodes: int = 40) -> None:
    env = make_env("mosaic/All-v0", split="test", attack="none").unwrapped
    plan = episode_plan(env.pool, [0])[:episodes]
    recorded = [play(env, make_baseline("comply"), spec) for spec in plan]
    turns = [[m["content"] for m in r.messages if m["role"] == "assistant"] for r in recorded]

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_server_app("mosaic/All-v0", split="test", attack="none")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)

    rows: dict[str, dict[str, list[float]]] = {"in process": {"reset": [], "step": [],
                                                              "episode": []},
                                               "OpenEnv /ws": {"reset": [], "step": [],
                                                               "episode": []}}
    remote = RemoteMosaicEnv(f"http://127.0.0.1:{port}")
    mismatches = 0
    for spec, actions, record in zip(plan, turns, recorded, strict=True):
        options = {"scenario": spec.scenario_id, "attack": spec.attack or "none"}
        for name, target in (("in process", env), ("OpenEnv /ws", remote)):
            start = time.perf_counter()
            target.reset(seed=spec.seed, options=options)
            rows[name]["reset"].append(time.perf_counter() - start)
            for action in actions:
                t = time.perf_counter()
                target.step(action)
                rows[name]["step"].append(time.perf_counter() - t)
            rows[name]["episode"].append(time.perf_counter() - start)
        mismatches += remote.trajectory().outcome != record.outcome
    remote.close()
    server.should_exit = True

    print(f"{len(plan)} episodes, {len(rows['in process']['step'])} steps each side; "
          f"outcome mismatches remote vs local: {mismatches}")
    print(f"{'transport':<12} {'reset med ms':>12} {'step med ms':>12} {'step p95 ms':>12} "
          f"{'episode med ms':>15}")
    for name, values in rows.items():
        steps = sorted(values["step"])
        p95 = steps[int(0.95 * (len(steps) - 1))]
        print(f"{name:<12} {1e3 * statistics.median(values['reset']):12.2f} "
              f"{1e3 * statistics.median(steps):12.2f} {1e3 * p95:12.2f} "
              f"{1e3 * statistics.median(values['episode']):15.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
