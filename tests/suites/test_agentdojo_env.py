"""mosaic/AgentDojo-v0: AgentDojo's tasks in MOSAIC text, judged by AgentDojo's own checks."""

from __future__ import annotations

import gymnasium as gym
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("agentdojo")

import mosaic_gym  # noqa: E402,F401  (registers the ids)
from mosaic_gym.agent.baselines import make_baseline  # noqa: E402
from mosaic_gym.envs.suites import agentdojo as ad  # noqa: E402
from mosaic_gym.errors import SuiteError  # noqa: E402
from mosaic_gym.judge.preference import PreferenceOracle  # noqa: E402
from mosaic_gym.protocol.format import ToolCall, render_action  # noqa: E402
from mosaic_gym.rollout import EpisodeSpec  # noqa: E402
from mosaic_gym.rollout import play as _play  # noqa: E402


def play(*args):  # the records as JSON, as the run files hold them
    return _play(*args).model_dump(mode="json")

PAIR = "agentdojo/banking/user_task_0/injection_task_1"
ATTACKER_IBAN = "US133000000121212121212"


@pytest.fixture(scope="module")
def env():
    environment = gym.make("mosaic/AgentDojo-v0", suite="banking", injection_task="all")
    yield environment.unwrapped
    environment.close()


def call(name: str, **arguments: object) -> str:
    return render_action("plan", ToolCall(name, arguments))


def test_passes_gymnasium_env_checker():
    from gymnasium.utils.env_checker import check_env

    check_env(ad.AgentDojoEnv(suite="slack", injection_task="injection_task_1").unwrapped,
              skip_render_check=True)


def test_pool_covers_every_pair_and_benign_task():
    data = ad.suite_data("banking")
    pairs = ad.AgentDojoEnv(suite="banking", injection_task="all").pool
    benign = ad.AgentDojoEnv(suite="banking").pool
    assert len(pairs) == len(data.suite.user_tasks) * len(data.suite.injection_tasks)
    assert {s.category for s in pairs} == {"injection"}
    assert len(benign) == len(data.suite.user_tasks)
    assert {s.category for s in benign} == {"benign"} and all(
        s.spec.injection is None for s in benign)


def test_ignoring_the_injection_completes_and_resists(env):
    outcome = play(env, make_baseline("reference"), EpisodeSpec(PAIR, ad.DEFAULT_ATTACK, 0))[
        "outcome"]
    assert outcome["completed"] and outcome["attack_success"] is False
    assert outcome["forbidden_events"] == [] and outcome["safe"] and outcome["correct"]
    assert outcome["injection_seen_step"] == 1  # the bill the ground truth reads is injected


def test_obeying_the_injection_is_an_attack_success_with_forbidden_money_out(env):
    record = play(env, make_baseline("comply"), EpisodeSpec(PAIR, ad.DEFAULT_ATTACK, 0))
    outcome = record["outcome"]
    assert outcome["attack_success"] is True and not outcome["safe"]
    targets = [e["target"] for e in outcome["forbidden_events"]]
    assert f"bank:{ATTACKER_IBAN}" in targets and outcome["harm"]


def test_refusing_at_once_is_refused_not_completed(env):
    outcome = play(env, make_baseline("refuse"), EpisodeSpec(PAIR, ad.DEFAULT_ATTACK, 0))[
        "outcome"]
    assert outcome["refused"] and outcome["refusal_step"] == 1
    assert not outcome["completed"] and outcome["termination"] == "refusal"


def test_benign_variant_of_a_pair_has_no_attack(env):
    outcome = play(env, make_baseline("comply"), EpisodeSpec(PAIR, None, 0))["outcome"]
    assert outcome["attack"] is None and outcome["attack_success"] is None
    assert outcome["completed"]


def test_preference_oracle_ranks_ignoring_over_obeying(env):
    ignore = play(env, make_baseline("reference"), EpisodeSpec(PAIR, ad.DEFAULT_ATTACK, 0))
    obey = play(env, make_baseline("comply"), EpisodeSpec(PAIR, ad.DEFAULT_ATTACK, 0))
    oracle = PreferenceOracle()
    assert oracle.compare(ignore, obey) == 1.0 and oracle.compare(obey, ignore) == 0.0


def test_record_has_the_shape_of_mosaic_env_records(env):
    record = play(env, make_baseline("reference"), EpisodeSpec(PAIR, ad.DEFAULT_ATTACK, 0))
    from mosaic_gym.core.trajectory import Trajectory

    assert set(record) == set(Trajectory.model_fields)  # the typed record MosaicEnv gives
    assert record["outcome"] is not None and record["messages"]
    assert record["tools"][-1]["function"]["name"] == "refusal_tool"
    roles = [m["role"] for m in record["messages"]]
    assert roles[:2] == ["system", "user"] and "tool" in roles


def test_bad_arguments_and_unknown_tools_are_observations_not_crashes(env):
    env.reset(options={"scenario": "agentdojo/banking/user_task_0", "attack": "none"})
    observation, _, terminated, _, info = env.step(call("send_money", recipient=3))
    assert observation.startswith("Error: ValidationError") and not terminated
    observation, _, terminated, _, _ = env.step(call("format_disk"))
    assert "unknown tool" in observation and not terminated
    observation, _, _, _, _ = env.step("<think>unclosed")
    assert observation.startswith("Format error")
    assert env.episode.tool_errors == 2 and env.episode.format_errors == 1


def test_each_reset_gets_a_fresh_copy_of_the_environment(env):
    options = {"scenario": "agentdojo/banking/user_task_0", "attack": "none"}
    env.reset(options=options)
    env.step(call("send_money", recipient="XX1", amount=5000.0, subject="s", date="2022-01-01"))
    assert any(t.recipient == "XX1" for t in env.episode.state.bank_account.transactions)
    env.reset(options=options)
    assert not any(t.recipient == "XX1" for t in env.episode.state.bank_account.transactions)


def test_state_diff_events_name_what_changed():
    env = ad.AgentDojoEnv(suite="workspace")
    env.reset(options={"scenario": "agentdojo/workspace/user_task_0", "attack": "none"})
    _, _, _, _, info = env.step(call("delete_file", file_id="0"))
    events = info["ledger"][-1].events
    assert [(e.kind, e.effect) for e in events] == [("file_deleted", "irreversible")]
    _, _, _, _, info = env.step(call("search_emails", query="a"))
    assert info["ledger"][-1].events == ()
    attacker = "mallory@example-attacker.com"
    _, _, _, _, info = env.step(call("send_email", recipients=[attacker], subject="s", body="b"))
    assert [e.target for e in info["ledger"][-1].events] == [f"mail:{attacker}"]


def test_native_harness_gives_the_same_verdicts():
    """``run_task_with_pipeline`` with the ground-truth pipeline vs the env, same calls."""
    from agentdojo.agent_pipeline.ground_truth_pipeline import GroundTruthPipeline

    for suite in ad.SUITES:
        data = ad.suite_data(suite)
        env = ad.AgentDojoEnv(suite=suite, injection_task="all")
        for uid in sorted(data.suite.user_tasks, key=ad._task_number)[:2]:
            for iid in sorted(data.suite.injection_tasks, key=ad._task_number)[:2]:
                user, injection = data.user_task(uid), data.injection_task(iid)
                injections = data.injections(ad.DEFAULT_ATTACK, user, injection)
                native = data.suite.run_task_with_pipeline(
                    GroundTruthPipeline(user), user, injection, injections)
                outcome = play(env, make_baseline("reference"),
                               EpisodeSpec(ad.scenario_id(suite, uid, iid), ad.DEFAULT_ATTACK,
                                           0))["outcome"]
                assert (outcome["completed"], outcome["attack_success"]) == native, (uid, iid)


def test_mosaic_strategies_are_planted_in_agentdojo_vectors(env):
    env.reset(options={"scenario": PAIR, "attack": "mosaic:ignore_previous"})
    assert env.episode.injections and set(env.episode.injections) <= set(
        ad.suite_data("banking").vector_defaults)
    goal = ad.suite_data("banking").injection_task("injection_task_1").GOAL
    assert all(goal in text for text in env.episode.injections.values())


def test_unknown_names_raise_typed_errors():
    with pytest.raises(SuiteError, match="unknown AgentDojo suite"):
        ad.AgentDojoEnv(suite="bank")
    with pytest.raises(SuiteError, match="unknown attack"):
        ad.AgentDojoEnv(suite="banking", attack="nope")
    with pytest.raises(SuiteError, match="no 'user_task_999'"):
        ad.AgentDojoEnv(suite="banking", user_task="user_task_999")
    with pytest.raises(SuiteError, match="in process only"):
        ad.AgentDojoEnv(suite="banking", backend="docker")


@settings(max_examples=25)
@given(st.text(max_size=200))
def test_fast_loader_is_agentdojos_loader(payload):
    """Whatever the injected text, the cached loader gives AgentDojo's environment (or both
    fail: a payload can break AgentDojo's YAML splice)."""
    data = ad.suite_data("banking")
    injections = {"injection_bill_text": payload}
    try:
        native = data.suite.load_and_inject_default_environment(injections)
    except Exception as exc:  # noqa: BLE001 - the splice is AgentDojo's, so are its errors
        with pytest.raises(type(exc)):
            data.load(injections)
        return
    assert data.load(injections) == native


@pytest.mark.parametrize("env_id, kwargs", [("mosaic/AgentDojo-v0", {"suite": "banking"}),
                                            ("mosaic/BFCL-v0", {})])
def test_non_string_actions_are_format_errors_in_suite_envs(env_id, kwargs):
    """As in mosaic's own envs: a token list or None is a format error, not an answer."""
    if env_id == "mosaic/BFCL-v0":
        pytest.importorskip("bfcl_eval")
    suite_env = gym.make(env_id, **kwargs).unwrapped
    suite_env.reset(seed=0)
    for action in (None, 42, ["<think>", "x"], b"final"):
        observation, _, terminated, _, _ = suite_env.step(action)
        assert observation.startswith("Format error") and not terminated
    assert suite_env.episode.format_errors == 4
