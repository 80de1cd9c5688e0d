"""The Gymnasium contract: check_env, vectorisation, seeding, info fields."""

from __future__ import annotations

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import mosaic_gym
from mosaic_gym.agent.baselines import ReferencePolicy
from mosaic_gym.protocol.format import ToolCall, render_action

ALL_IDS = [i for i in mosaic_gym.ENV_IDS if i != "mosaic/Scenario-v0"]


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_check_env_passes(env_id):
    env = gym.make(env_id, split="all")
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_scenario_env_by_id_and_by_path(library):
    variant = library[0]
    by_id = gym.make("mosaic/Scenario-v0", scenario=variant.id)
    obs, info = by_id.reset(seed=3)
    assert info["scenario_id"] == variant.id
    by_path = gym.make("mosaic/Scenario-v0", scenario=variant.source)
    obs2, info2 = by_path.reset(seed=3)
    assert info2["scenario_id"].startswith(variant.id.split("/")[0])
    check_env(by_id.unwrapped, skip_render_check=True)


def test_info_fields_and_messages():
    env = gym.make("mosaic/Injection-v0", split="all")
    obs, info = env.reset(seed=11)
    assert obs == info["messages"][-1]["content"]
    assert info["messages"][0]["role"] == "system"
    names = [tool["function"]["name"] for tool in info["tools"]]
    assert names[-1] == "refusal_tool"
    assert info["attack"] is not None  # "random" picks a strategy for injection scenarios
    action = render_action("look", ToolCall(names[0], {}))
    obs, reward, terminated, truncated, info = env.step(action)
    assert info["messages"][-2]["role"] == "assistant"
    assert info["messages"][-1]["role"] == "tool"
    assert len(info["ledger"]) == 1


def test_outcome_at_episode_end():
    env = gym.make("mosaic/Harmful-v0", split="all")
    env.reset(seed=0)
    refusal = render_action("no", ToolCall("refusal_tool", {"reason": "harmful"}))
    _, reward, terminated, truncated, info = env.step(refusal)
    assert terminated and not truncated
    outcome = info["outcome"]
    assert isinstance(outcome, dict)  # plain data in info (Gymnasium convention)
    assert outcome["refused"] and outcome["refusal_step"] == 1 and outcome["correct"]
    assert reward == 1.0


def test_max_steps_truncates_and_counts_format_errors():
    env = gym.make("mosaic/Benign-v0", split="all", max_steps=3)
    env.reset(seed=0)
    results = [env.step("<think>unclosed plan") for _ in range(3)]
    assert [r[2:4] for r in results] == [(False, False), (False, False), (False, True)]
    assert results[0][0].startswith("Format error")
    outcome = results[-1][4]["outcome"]
    assert outcome["termination"] == "max_steps" and outcome["format_errors"] == 3


def test_seed_determines_observations():
    def rollout(seed):
        env = gym.make("mosaic/All-v0", split="all")
        obs, info = env.reset(seed=seed)
        policy = ReferencePolicy()
        policy.reset(env.unwrapped.current_scenario)
        observations = [obs]
        done = False
        while not done:
            obs, _, term, trunc, info = env.step(policy.act(info["messages"], info["tools"]))
            observations.append(obs)
            done = term or trunc
        return observations, info["outcome"]

    first, second = rollout(123), rollout(123)
    assert first == second
    others = [rollout(seed)[0] for seed in range(124, 130)]
    assert any(o != first for o in others)


@pytest.mark.parametrize("vector", ["sync", "async"])
def test_make_vec(vector):
    kwargs = {"vector_kwargs": {"shared_memory": False}} if vector == "async" else {}
    envs = gym.make_vec("mosaic/All-v0", num_envs=2, vectorization_mode=vector, split="all",
                        **kwargs)
    obs, infos = envs.reset(seed=5)
    assert len(obs) == 2 and all(isinstance(o, str) for o in obs)
    refusal = render_action("no", ToolCall("refusal_tool", {"reason": "test"}))
    obs, rewards, terminated, truncated, infos = envs.step([refusal, refusal])
    assert list(terminated) == [True, True]
    envs.close()


def test_bad_kwargs_are_clear():
    with pytest.raises(ValueError, match="unknown attack"):
        gym.make("mosaic/Injection-v0", attack="nope")
    with pytest.raises(ValueError, match="unknown split"):
        gym.make("mosaic/Injection-v0", split="dev")
    with pytest.raises(ValueError, match="unknown reward"):
        gym.make("mosaic/Injection-v0", reward="dense")


def test_callable_reward():
    env = gym.make("mosaic/Harmful-v0", split="all", reward=lambda outcome: 42.0)
    env.reset(seed=0)
    refusal = render_action("no", ToolCall("refusal_tool", {"reason": "harmful"}))
    assert env.step(refusal)[1] == 42.0
