"""The public episode accessors, the registry's iteration and the empty-split message."""

from __future__ import annotations

import gymnasium as gym
import pytest
import yaml

import mosaic_gym  # noqa: F401 - registers the ids
from mosaic_gym.envs.accessors import NoEpisodeError
from mosaic_gym.envs.mosaic_env import MosaicEnv
from mosaic_gym.errors import ScenarioError
from mosaic_gym.testing.strategies import ToolCall, render_turn
from mosaic_gym.tools import Tool, standard_tools

SCENARIO = "devops.lock-down-env-file"


def test_accessors_need_an_episode():
    env = MosaicEnv(scenario=SCENARIO, split="all")
    for name in ("secrets", "ledger", "egress", "declared_effects", "injection_targets"):
        with pytest.raises(NoEpisodeError, match="reset"):
            getattr(env, name)
    with pytest.raises(NoEpisodeError):
        env.world_snapshot()


def test_secrets_are_this_seeds_values_and_live_in_the_world():
    env = MosaicEnv(scenario=SCENARIO, split="all")
    env.reset(seed=1)
    secrets = dict(env.secrets)
    assert secrets and set(env.protected_secrets) <= set(secrets)
    contents = [env.unwrapped.sandbox.read_file(path).decode()
                for path, state in env.world_snapshot().files.items() if not state.is_dir]
    assert all(any(value in text for text in contents) for value in secrets.values())
    with pytest.raises(TypeError):
        env.secrets["x"] = "y"  # read-only view
    env.reset(seed=2)
    assert dict(env.secrets) != secrets  # Faker values follow the seed


def test_ledger_snapshot_and_diff_follow_the_episode():
    env = MosaicEnv(scenario=SCENARIO, split="all")
    env.reset(seed=0)
    before = env.world_snapshot()
    assert env.initial_snapshot == before and env.world_diff() == []
    env.step(render_turn(ToolCall("write_file", {"path": "/home/user/n.txt", "content": "a"})))
    assert [e.target for e in env.world_diff()] == ["/home/user/n.txt"]
    assert env.world_diff(before, env.world_snapshot()) == env.world_diff()
    assert [entry.tool for entry in env.ledger] == ["write_file"]
    assert env.egress == ()


def test_declared_effects_and_safety_classes():
    env = gym.make("mosaic/Scenario-v0", scenario=SCENARIO)
    _, info = env.reset(seed=0)
    effects = env.unwrapped.declared_effects
    assert list(effects) == [tool["function"]["name"] for tool in info["tools"]]
    assert effects["refusal_tool"] == "terminal" and effects["read_file"] == "read"
    assert env.unwrapped.safety_class("browse") == "egress"
    assert env.unwrapped.max_steps == env.unwrapped.episode.max_steps
    with pytest.raises(KeyError, match="known: list_files"):
        env.unwrapped.safety_class("teleport")


def test_the_registry_iterates_like_a_mapping():
    registry = standard_tools()
    names = [name for name in registry]  # used to raise KeyError: 0
    assert names == registry.names() and len(registry) == len(names)
    assert all(isinstance(tool, Tool) for tool in registry.values())
    assert dict(registry.items())["browse"].name == "browse"
    assert registry.get("nope") is None and "read_file" in registry


def test_empty_split_error_suggests_split_all(tmp_path, library):
    variant = next(v for v in library if v.split == "test" and v.spec.family == [])
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump(variant.raw), encoding="utf-8")
    with pytest.raises(ScenarioError, match="in split 'train'.*they are in split test.*"
                                            "split='all'"):
        gym.make("mosaic/All-v0", scenario_paths=[mine])
    assert gym.make("mosaic/All-v0", scenario_paths=[mine], split="all").reset(seed=0)
