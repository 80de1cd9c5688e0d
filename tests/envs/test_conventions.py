"""Gymnasium conventions the environment honours (DESIGN §3, issue 8 item 8)."""

from __future__ import annotations

import copy
import json
import pickle

import gymnasium as gym
import pytest
from gymnasium.spaces import flatten, flatten_space, unflatten
from gymnasium.wrappers import FlattenObservation, TimeLimit

import mosaic_gym  # noqa: F401  (registers the ids)
from mosaic_gym.agent.baselines import ReferencePolicy
from mosaic_gym.core.trajectory import Trajectory
from mosaic_gym.protocol import REFUSAL_TOOL, ToolCall, render_action
from mosaic_gym.tools import standard_tools

LIST = render_action("look", ToolCall("list_files", {"path": "/home/user"}))


def test_max_episode_steps_ends_the_episode_judged() -> None:
    env = gym.make("mosaic/Benign-v0", split="all", max_episode_steps=2)
    assert isinstance(env, TimeLimit) or any(isinstance(w, TimeLimit) for w in _wrappers(env))
    env.reset(seed=0)
    *_, terminated, truncated, info = env.step("<think>unclosed")
    assert not (terminated or truncated) and "outcome" not in info
    _, reward, terminated, truncated, info = env.step("<think>unclosed")
    assert truncated and not terminated
    assert info["outcome"]["termination"] == "max_steps" and info["outcome"]["steps"] == 2
    assert reward == 0.0  # judged: safe, nothing done (sparse reward), not a bare truncation


def _wrappers(env: gym.Env) -> list[gym.Env]:
    found = []
    while isinstance(env, gym.Wrapper):
        found.append(env)
        env = env.env
    return found


def test_finish_judges_an_episode_stopped_by_the_caller() -> None:
    env = gym.make("mosaic/Benign-v0", split="all").unwrapped
    env.reset(seed=0)
    env.step(LIST)
    info = env.finish()
    assert info["outcome"]["termination"] == "max_steps" and info["outcome"]["steps"] == 1
    assert env.finish() == info  # a finished episode stays as it is
    assert env.step(LIST)[2] is True  # and answers "the episode is over"


def test_info_outcome_is_plain_data() -> None:
    env = gym.make("mosaic/Harmful-v0", split="all")
    env.reset(seed=1)
    *_, info = env.step(render_action("no", ToolCall(REFUSAL_TOOL, {"reason": "harmful"})))
    assert type(info["outcome"]) is dict
    assert json.loads(json.dumps(info["outcome"])) == info["outcome"]


@pytest.mark.parametrize("clone", [pickle.loads, copy.deepcopy], ids=["pickle", "deepcopy"])
def test_environments_copy_before_and_after_reset(clone) -> None:
    env = gym.make("mosaic/All-v0", split="all").unwrapped
    fresh = clone(pickle.dumps(env)) if clone is pickle.loads else clone(env)
    assert fresh.reset(seed=3)[0] == env.reset(seed=3)[0]
    policy = ReferencePolicy()
    policy.reset(env.current_scenario)
    _, info = env.reset(seed=3)
    action = policy.act(info["messages"], info["tools"], info)
    env.step(action)
    copied = clone(pickle.dumps(env)) if clone is pickle.loads else clone(env)
    assert copied.episode is not None and copied.episode is not env.episode
    assert copied.episode.messages == env.episode.messages  # replayed to the same state
    while True:  # both go on identically, and end with the same verdict
        action = policy.act(env.episode.messages, env.episode.tool_schemas,
                            {"ledger": env.episode.ledger.entries})
        ours, theirs = env.step(action), copied.step(action)
        assert ours[0] == theirs[0]
        if ours[2] or ours[3]:
            assert ours[4]["outcome"] == theirs[4]["outcome"]
            break
    # the next reset draws the same episode too (the RNG state travels with the copy)
    assert env.reset()[0] == copied.reset()[0]


def test_text_spaces_flatten_any_unicode() -> None:
    env = gym.make("mosaic/All-v0", split="all")
    space = env.observation_space
    text = "Grüße, 世界 ✓ 🙂"
    cells = flatten(space, text)
    assert cells.shape == flatten_space(space).shape
    assert unflatten(space, cells) == text
    wrapped = FlattenObservation(env)
    observation, _ = wrapped.reset(seed=0)
    assert observation.shape == (space.max_length,)
    assert unflatten(space, observation) == env.unwrapped.episode.messages[1]["content"]


def test_non_string_actions_are_format_errors() -> None:
    env = gym.make("mosaic/Benign-v0", split="all").unwrapped
    env.reset(seed=0)
    for action in (None, 42, {"name": "list_files"}, b"<think>x</think>"):
        observation, _, terminated, _, info = env.step(action)
        assert observation.startswith("Format error") and not terminated
        assert info["messages"][-1]["role"] == "user"
    assert env.episode.format_errors == 4 and env.episode.answer is None


def test_standard_tools_is_a_mapping() -> None:
    tools = standard_tools()
    names = list(tools)
    assert names == tools.names() and len(tools) == len(names)
    assert all(tools[name].name == name for name in tools)
    assert [tool.name for tool in tools.values()] == names
    assert dict(tools.items())["send_email"] is tools["send_email"]


def test_a_record_replays_its_episode() -> None:
    env = gym.make("mosaic/Injection-v0", split="all", attack="random").unwrapped
    env.reset(seed=11, options={"attack": "authority"})
    env.step(LIST)
    record = env.trajectory()
    assert record.reset_seed == 11 and record.reset_options == {"attack": "authority"}
    again = gym.make("mosaic/Injection-v0", split="all", attack="random").unwrapped
    again.reset(seed=record.reset_seed, options=record.reset_options)
    again.step(LIST)
    replay = again.trajectory()
    assert replay.messages == record.messages and replay.episode_seed == record.episode_seed
    assert Trajectory.load(json.loads(record.to_json())) == record


def test_messages_are_openai_format_exactly() -> None:
    env = gym.make("mosaic/Benign-v0", split="all").unwrapped
    env.reset(seed=0)
    env.step(LIST)
    call = env.trajectory().messages[2]["tool_calls"][0]
    assert call["type"] == "function" and isinstance(call["function"]["arguments"], str)
    assert json.loads(call["function"]["arguments"]) == {"path": "/home/user"}


def test_format_1_records_still_load() -> None:
    old = {"scenario_id": "email.reply", "seed": 77, "attack": None, "category": "benign",
           "split": "train", "messages": [
               {"role": "assistant", "content": "x", "tool_calls": [
                   {"id": "call_1", "type": "function",
                    "function": {"name": "list_emails", "arguments": {}}}]}],
           "tools": [], "steps": [{"kind": "tool_call", "has_plan": True,
                                   "has_safety_check": False, "format_score": 2.0}],
           "ledger": [], "outcome": {"scenario_id": "email.reply", "category": "benign",
                                     "expected": "complete", "completed": True,
                                     "refused": False, "harm": False, "leaks": [],
                                     "attack_success": None, "infra_error": None},
           "tokens": {"assistant": 1, "safety_check": 0}, "policy": "comply"}
    record = Trajectory.load(old)
    assert record.episode_seed == 77 and record.reset_seed is None
    assert record.messages[0]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert record.outcome is not None and record.outcome.safe and record.outcome.correct


def test_judged_time_limit_by_hand() -> None:
    from mosaic_gym.envs.time_limit import JudgedTimeLimit

    env = JudgedTimeLimit(gym.make("mosaic/Benign-v0", split="all"), max_episode_steps=1)
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step(LIST)
    assert truncated and not terminated and info["outcome"]["termination"] == "max_steps"


def test_vector_envs_end_judged_at_their_step_limit() -> None:
    envs = gym.make_vec("mosaic/Benign-v0", num_envs=2, vectorization_mode="sync",
                        split="all", max_episode_steps=1)
    envs.reset(seed=0)
    *_, truncated, infos = envs.step([LIST, LIST])
    assert list(truncated) == [True, True]
    assert list(infos["outcome"]["termination"]) == ["max_steps", "max_steps"]
    envs.close()
