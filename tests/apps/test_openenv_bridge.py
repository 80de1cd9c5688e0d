"""mosaic over OpenEnv 0.10: a real uvicorn server on loopback, episodes over the WebSocket
session, compared step by step with the same episode played in process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("openenv", reason="needs the openenv extra")
uvicorn = pytest.importorskip("uvicorn")

from mosaic_gym.agent.baselines import make_baseline  # noqa: E402
from mosaic_gym.bridges.openenv import RemoteMosaicEnv, create_server_app  # noqa: E402
from mosaic_gym.envs.registration import make_env  # noqa: E402
from mosaic_gym.errors import UsageError  # noqa: E402
from mosaic_gym.rollout import episode_plan, play  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    port = _free_port()
    app = create_server_app("mosaic/Injection-v0", split="test", attack="none")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_a_remote_episode_equals_the_local_one(server_url: str) -> None:
    env = make_env("mosaic/Injection-v0", split="test", attack="none")
    spec = next(s for s in episode_plan(env.unwrapped.pool, [3]) if s.attack == "authority")
    env.close()
    # The comply baseline needs the resolved scenario: it is played locally to get its
    # turns, then the same turns are sent to the server.
    local_env = make_env("mosaic/Injection-v0", split="test", attack="none").unwrapped
    local = play(local_env, make_baseline("comply"), spec).model_dump(mode="json")
    turns = [m["content"] for m in local["messages"] if m["role"] == "assistant"]
    with RemoteMosaicEnv(server_url) as remote:
        text, info = remote.reset(seed=spec.seed, options={"scenario": spec.scenario_id,
                                                            "attack": spec.attack})
        assert info["scenario_id"] == spec.scenario_id
        assert info["messages"] == local["messages"][:len(info["messages"])]
        assert {t["function"]["name"] for t in info["tools"]} >= {"refusal_tool"}
        done = False
        for turn in turns:
            assert not done
            text, reward, terminated, truncated, info = remote.step(turn)
            done = terminated or truncated
        assert done
        record = remote.trajectory().model_dump(mode="json")
    assert record["outcome"] == local["outcome"]
    assert record["messages"] == local["messages"]
    assert info["outcome"]["attack_success"] is local["outcome"]["attack_success"]


def test_sessions_are_independent(server_url: str) -> None:
    with RemoteMosaicEnv(server_url) as first, RemoteMosaicEnv(server_url) as second:
        _, a = first.reset(seed=0)
        _, b = second.reset(seed=1)
        # A refusal ends the first session's episode only.
        refusal = make_baseline("refuse").act(a["messages"], a["tools"], a)
        *_, terminated, _, info = first.step(refusal)
        assert terminated and info["outcome"]["refused"]
        with pytest.raises(RuntimeError, match="not ended"):
            second.trajectory()
        _, _, terminated, _, info = second.step("<think>Look first.</think>\nno action here")
        assert info["messages"][:2] == b["messages"][:2] and len(info["messages"]) > 2


def test_the_server_refuses_bad_settings_before_serving() -> None:
    with pytest.raises(UsageError, match="did you mean"):
        create_server_app("mosaic/Injecton-v0")
    with pytest.raises(ValueError, match="unknown split"):
        create_server_app("mosaic/All-v0", split="nope")


def test_the_grpo_rollout_can_step_remote_environments(server_url: str) -> None:
    """``env.remote``: MosaicRollout steps RemoteMosaicEnv instances through the rollout
    driver; RemoteTRLEnv behaves as MosaicTRLEnv."""
    pytest.importorskip("trl")
    from mosaic_gym.bridges.openenv import RemoteMosaicEnv, RemoteTRLEnv
    from mosaic_gym.train.grpo import MosaicRollout
    from mosaic_gym.train.trl_env import MosaicTRLEnv, episode_rows

    rollout = MosaicRollout("mosaic/Injection-v0", remote=server_url)
    [driven] = rollout.environments(1)
    assert isinstance(driven, RemoteMosaicEnv) and driven.unwrapped is driven
    driven.close()
    remote = RemoteTRLEnv(server_url)
    local = MosaicTRLEnv("mosaic/Injection-v0")
    row = episode_rows(env_id="mosaic/Injection-v0", split="test", attack="all", limit=1,
                       seed=4)[0]
    for env in (remote, local):
        env.reset(scenario_id=row["scenario_id"], attack=row["attack"] or None, seed=row["seed"])
    assert remote.messages == local.messages and remote.tools == local.tools
    turn = "<think>Look around.</think>\n<tool_call>{\"name\": \"list_files\", " \
           "\"arguments\": {}}</tool_call>"
    assert remote.act(turn) == local.act(turn)
    assert remote.messages == local.messages
    remote.truncate()
    local.truncate()
    assert remote.done and local.done
    assert remote.get_reward() == local.get_reward()
    assert remote.trajectory().outcome == local.trajectory().outcome
    remote.close()
    local.close()


def test_a_recipe_accepts_env_remote() -> None:
    pytest.importorskip("trl")
    from mosaic_gym.train.recipes import parse_recipe

    recipe = parse_recipe({"method": "grpo_pairwise", "model": "runs/tiny/sft", "output_dir": "x",
                           "env": {"remote": "http://127.0.0.1:8000"}})
    assert recipe.env.remote == "http://127.0.0.1:8000"
