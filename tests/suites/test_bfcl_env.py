"""mosaic/BFCL-v0: BFCL's items in MOSAIC text, judged by BFCL's AST checker, nothing eval'd."""

from __future__ import annotations

import sys

import gymnasium as gym
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("bfcl_eval")

import mosaic_gym  # noqa: E402,F401  (registers the ids)
from mosaic_gym.agent.baselines import make_baseline  # noqa: E402
from mosaic_gym.envs.suites import bfcl  # noqa: E402
from mosaic_gym.errors import SuiteError  # noqa: E402
from mosaic_gym.protocol.format import ToolCall, render_action  # noqa: E402
from mosaic_gym.rollout import EpisodeSpec  # noqa: E402
from mosaic_gym.rollout import play as _play  # noqa: E402


def play(*args):  # the records as JSON, as the run files hold them
    return _play(*args).model_dump(mode="json")

JSONValue = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                         | st.text(max_size=20),
                         lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                         max_leaves=10)


def call(name: str, **arguments: object) -> str:
    return render_action("plan", ToolCall(name, arguments))


def answer(text: str = "Done.") -> str:
    return render_action("finish", text)


def outcome_of(env, item: str, *turns: str):
    env.reset(options={"scenario": f"bfcl/{item}"})
    info = {}
    for turn in turns:
        _, _, terminated, truncated, info = env.step(turn)
        if terminated or truncated:
            break
    return info["outcome"]


@pytest.fixture(scope="module")
def env():
    return gym.make("mosaic/BFCL-v0", category="all").unwrapped


def test_passes_gymnasium_env_checker():
    from gymnasium.utils.env_checker import check_env

    check_env(bfcl.BFCLEnv(category="parallel", limit=3), skip_render_check=True)


def test_right_call_is_completed_and_wrong_value_is_not(env):
    right = outcome_of(env, "simple_python_0", call("calculate_triangle_area", base=10, height=5),
                       answer())
    wrong = outcome_of(env, "simple_python_0", call("calculate_triangle_area", base=11, height=5),
                       answer())
    missing = outcome_of(env, "simple_python_0", answer("The area is 25."))
    assert right["completed"] and right["correct"]
    assert not wrong["completed"] and not missing["completed"]
    assert right["category"] == "benign" and right["expected"] == "complete"


def test_parallel_calls_over_several_turns_in_any_order(env):
    item = bfcl.find_item("parallel_0")
    calls = bfcl.reference_calls(item)
    assert len(calls) >= 2
    turns = [call(c.tool, **c.args) for c in reversed(calls)]
    assert outcome_of(env, "parallel_0", *turns, answer())["completed"]
    assert not outcome_of(env, "parallel_0", turns[0], answer())["completed"]


def test_irrelevance_rewards_abstaining_by_refusal_or_plain_answer(env):
    item = bfcl.find_item("irrelevance_0")
    name = item["function"][0]["name"]
    by_refusal = outcome_of(env, "irrelevance_0", call("refusal_tool", reason="no tool fits"))
    by_answer = outcome_of(env, "irrelevance_0", answer("None of my tools can do this."))
    acted = outcome_of(env, "irrelevance_0", call(name, weight=1.0, height=1.0), answer())
    assert by_refusal["correct"] and by_answer["correct"] and by_answer["refused"]
    assert not acted["correct"] and not acted["refused"]
    assert acted["category"] == "irrelevance" and acted["expected"] == "refuse"


def test_refusing_a_relevant_item_is_over_refusal(env):
    outcome = outcome_of(env, "multiple_0", call("refusal_tool", reason="no"))
    assert outcome["refused"] and not outcome["completed"] and not outcome["correct"]


def test_agent_text_is_never_executed(env, tmp_path):
    marker = tmp_path / "pwned"
    code = f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"
    outcome = outcome_of(env, "simple_python_0", call("calculate_triangle_area", base=code,
                                                      height=code, unit=code), answer())
    assert not marker.exists() and not outcome["completed"] and outcome["infra_error"] is None


@settings(max_examples=40)
@given(st.dictionaries(st.text(max_size=10), JSONValue, max_size=4), st.text(max_size=12))
def test_any_arguments_give_a_verdict_never_an_exception(arguments, name):
    env = bfcl.BFCLEnv(item="simple_python_0")
    env.reset(options={"scenario": "bfcl/simple_python_0"})
    env.step(render_action("p", ToolCall(name or "x", arguments)))
    _, _, terminated, _, info = env.step(answer())
    assert terminated and isinstance(info["outcome"]["completed"], bool)
    assert info["outcome"]["infra_error"] is None


def test_scripted_baselines_score_as_the_checker_says():
    env = bfcl.BFCLEnv(category="all", limit=5)
    for scenario in env.pool:
        reference = play(env, make_baseline("reference"), EpisodeSpec(scenario.id, None, 0))
        refuse = play(env, make_baseline("refuse"), EpisodeSpec(scenario.id, None, 0))
        assert reference["outcome"]["correct"], scenario.id
        assert refuse["outcome"]["correct"] == (scenario.category == "irrelevance")


def test_checker_loads_privately_leaving_bfcl_modules_alone():
    bfcl.ast_checker_module()
    registry = sys.modules.get("bfcl_eval.constants.model_config")
    assert registry is None or hasattr(registry, "__file__")


def test_schemas_are_json_schema():
    schemas = bfcl.tool_schemas(bfcl.find_item("simple_python_0"))
    parameters = schemas[0]["function"]["parameters"]
    assert parameters["type"] == "object"
    assert {p["type"] for p in parameters["properties"].values()} <= {"integer", "string"}


def test_unknown_items_and_attacks_raise_typed_errors():
    with pytest.raises(SuiteError, match="no item"):
        bfcl.BFCLEnv(item="simple_python_99999")
    with pytest.raises(SuiteError, match="unsupported BFCL category"):
        bfcl.BFCLEnv(category="web_search")
    with pytest.raises(SuiteError, match="no injections"):
        bfcl.BFCLEnv(attack="authority")


# -- multi-turn ------------------------------------------------------------------------------

MULTI = "multi_turn_base_0"


def test_multi_turn_reference_passes_bfcl_state_and_response_checks():
    env = bfcl.BFCLEnv(item=MULTI)
    record = play(env, make_baseline("reference"), EpisodeSpec(f"bfcl/{MULTI}", None, 0))
    users = [m for m in record["messages"] if m["role"] == "user"]
    assert len(users) == len(bfcl.find_item(MULTI)["question"])  # every turn was delivered
    assert record["outcome"]["completed"] and env.episode.checker_result == {"valid": True}
    assert any(e["events"] for e in record["ledger"])  # the file system really changed


def test_multi_turn_fails_when_a_turn_is_skipped_or_a_state_differs():
    env = bfcl.BFCLEnv(item=MULTI)
    turns = len(bfcl.find_item(MULTI)["question"])
    skipped = outcome_of(env, MULTI, *[answer()] * turns)
    assert not skipped["completed"]
    assert env.episode.checker_result["error_type"] == "multi_turn:empty_turn_model_response"
    wrong = outcome_of(env, MULTI, call("mkdir", dir_name="elsewhere"), *[answer()] * turns)
    assert not wrong["completed"]
    assert env.episode.checker_result["error_type"] == "multi_turn:instance_state_mismatch"


def test_multi_turn_agent_cannot_reach_private_methods_or_builtins():
    env = bfcl.BFCLEnv(item=MULTI)
    env.reset(options={"scenario": f"bfcl/{MULTI}"})
    for name in ("_load_scenario", "__init__", "eval", "exec", "__import__"):
        observation, _, terminated, _, _ = env.step(call(name, x=1))
        assert observation.startswith("Error during execution") and not terminated


@pytest.mark.parametrize("text", ["__import__('os').system('true')", "cd(folder=open('x'))",
                                  "cd(**{'folder': 'a'})", "x = 1", "cd"])
def test_ground_truth_parser_refuses_anything_but_literal_calls(text):
    with pytest.raises(ValueError):
        bfcl.parse_call(text)


@settings(max_examples=60)
@given(st.text(max_size=40))
def test_ground_truth_parser_only_returns_or_raises_value_error(text):
    try:
        name, args, kwargs = bfcl.parse_call(text)
    except ValueError:
        return
    assert isinstance(name, str) and isinstance(args, tuple) and isinstance(kwargs, dict)
