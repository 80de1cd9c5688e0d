"""The TRL adapter and the GRPO rollout, against the real environment (no env mocks).

The only stand-in is for TRL's trainer in the rollout tests: its generation call returns the
token ids of scripted baseline turns, so the token bookkeeping (prompt, agent tokens, masked
environment tokens) can be checked exactly against a fresh rendering of the same chat.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mosaic_gym.agent.baselines import make_baseline
from mosaic_gym.envs.mosaic_env import MosaicEnv
from mosaic_gym.rollout import EpisodeSpec, play
from mosaic_gym.train.trl_env import EPISODE_KEY, MosaicTRLEnv, episode_of, episode_rows

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"
SUBSET = [LIBRARY / "harmful" / "email_harass_coworker.yaml",
          LIBRARY / "injection" / "email_summary_exfil.yaml",
          LIBRARY / "benign" / "email_reply_with_report.yaml"]
HARMFUL = "email.harass-coworker/intimidation"
INJECTION = "email.summarise-inbox"


@pytest.fixture()
def env():
    adapter = MosaicTRLEnv(scenario_paths=SUBSET, max_steps=8)
    yield adapter
    adapter.close()


def _play(adapter: MosaicTRLEnv, policy_name: str, scenario_id: str, attack: str | None,
          seed: int = 0) -> dict[str, Any]:
    adapter.reset(scenario_id=scenario_id, attack=attack, seed=seed)
    policy = make_baseline(policy_name, seed=seed)
    # the teachers' plan texts are drawn under the policy seed: the one the driver passes
    policy.reset(adapter.env.current_scenario,
                 seed=EpisodeSpec(scenario_id, attack, seed).sampling_seed(0))
    while not adapter.act(policy.act(adapter.messages, adapter.tools,
                                     {"ledger": adapter.env.episode.ledger.entries})):
        pass
    return adapter.trajectory().model_dump(mode="json")


def test_reset_returns_none_and_exposes_the_episode(env: MosaicTRLEnv) -> None:
    assert env.reset(scenario_id=HARMFUL, attack=None, seed=3, prompt=["ignored"]) is None
    assert [m["role"] for m in env.messages] == ["system", "user"]
    names = {tool["function"]["name"] for tool in env.tools}
    assert "refusal_tool" in names
    assert not env.done
    with pytest.raises(RuntimeError, match="before the episode ended"):
        env.get_reward()


def test_refusing_a_harmful_request_is_rewarded_and_ends_the_episode(env: MosaicTRLEnv) -> None:
    record = _play(env, "refuse", HARMFUL, None)
    assert env.done and env.get_reward() == 1.0
    assert record["outcome"]["refused"] and record["outcome"]["termination"] == "refusal"
    assert record["reset_seed"] == 0
    assert record["reset_options"] == {"scenario": HARMFUL, "attack": "none"}
    with pytest.raises(RuntimeError, match="episode is over"):
        env.act("<think>again</think><answer>x</answer>")


def test_complying_with_a_harmful_request_is_penalised(env: MosaicTRLEnv) -> None:
    _play(env, "comply", HARMFUL, None)
    assert env.get_reward() == -1.0


def test_adapter_episodes_match_the_runner(env: MosaicTRLEnv) -> None:
    """Stepping through the adapter is stepping the env: same outcome as runner.play."""
    base = MosaicEnv(split="all", scenario_paths=SUBSET, max_steps=8)
    try:
        for policy, scenario, attack in [("comply", INJECTION, "authority"),
                                         ("reference", INJECTION, "authority"),
                                         ("comply", HARMFUL, None)]:
            ours = _play(env, policy, scenario, attack, seed=1)
            theirs = play(base, make_baseline(policy, seed=1),
                          EpisodeSpec(scenario, attack, 1)).model_dump(mode="json")
            assert ours["outcome"] == theirs["outcome"]
            assert ours["messages"] == theirs["messages"]
    finally:
        base.close()


def test_truncate_judges_the_episode_as_it_stands(env: MosaicTRLEnv) -> None:
    env.reset(scenario_id=INJECTION, attack="authority", seed=0)
    env.act('<think>look</think><tool_call>{"name": "list_emails", "arguments": {}}</tool_call>')
    env.truncate()
    record = env.trajectory()
    assert env.done and record.outcome.termination == "max_steps"
    assert record.outcome.steps == 1
    assert env.get_reward() in (-1.0, 0.0)  # not completed: never +1


def test_episode_rows_carry_their_identity_through_arrow() -> None:
    datasets = pytest.importorskip("datasets")
    rows = episode_rows(split="all", seeds=[0, 1], limit=5, seed=7, scenario_paths=SUBSET)
    assert len(rows) == 5
    again = episode_rows(split="all", seeds=[0, 1], limit=5, seed=7, scenario_paths=SUBSET)
    assert rows == again  # the subset is seeded
    table = datasets.Dataset.from_list(rows)
    for row, original in zip(table, rows, strict=True):
        key = episode_of(row["prompt"])
        assert key == {"scenario_id": original["scenario_id"],
                       "attack": original["attack"] or None, "seed": original["seed"]}
        assert row["prompt"][1]["role"] == "user" and not row["prompt"][1].get(EPISODE_KEY)
    with pytest.raises(ValueError, match="carries no"):
        episode_of([{"role": "system", "content": "x"}])


def test_limited_rows_cover_every_category() -> None:
    # SUBSET: 1 harmful variant family, 1 injection scenario played under every attack, 1
    # benign: a uniform draw of 3 would mostly be injection episodes; the one draw there is
    # (rollout.plan.episode_subset) is stratified, whatever the seed
    drawn = [episode_rows(split="all", seeds=[0], limit=3, seed=s, scenario_paths=SUBSET)
             for s in range(20)]
    categories = {"email.harass": "harmful", "email.summarise": "injection",
                  "email.reply": "benign"}

    def kinds(rows: list[dict[str, Any]]) -> set[str]:
        return {next(c for p, c in categories.items() if r["scenario_id"].startswith(p))
                for r in rows}

    assert all(kinds(rows) == {"harmful", "injection", "benign"} for rows in drawn)
    # the seed still picks the episodes
    assert len({tuple(r["scenario_id"] + str(r["attack"]) for r in rows) for rows in drawn}) > 1


# -- the GRPO rollout ------------------------------------------------------------------------

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("trl")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from transformers import AutoTokenizer

    from mosaic_gym.train.tiny import build_tiny

    folder = build_tiny(tmp_path_factory.mktemp("tiny") / "base", scenario_paths=SUBSET,
                        split="all", vocab_size=600, hidden_size=32, num_layers=1, num_heads=2,
                        num_kv_heads=1, intermediate_size=64, max_positions=8192)
    return AutoTokenizer.from_pretrained(folder)


class ScriptedTrainer:
    """Stands in for GRPOTrainer: 'generates' each live episode's next scripted turn."""

    def __init__(self, tokenizer: Any, rollout: Any, policies: list[Any]) -> None:
        self.processing_class = tokenizer
        self.max_completion_length = 512
        self.accelerator = SimpleNamespace(num_processes=1)
        self.model = SimpleNamespace(config=SimpleNamespace(max_position_embeddings=8192))
        self.eos_token_ids = [tokenizer.eos_token_id]
        self.rollout, self.policies = rollout, policies
        self.seen_inputs: list[list[int]] = []
        self.started = False

    def _generate_single_turn(self, inputs, images, multimodal, num_generations):
        envs = [env.unwrapped for env in self.rollout.pool[: len(self.policies)]]
        if not self.started:
            for env, policy in zip(envs, self.policies, strict=True):
                policy.reset(env.current_scenario, seed=0)
            self.started = True
        live = [(env.episode, policy) for env, policy in zip(envs, self.policies, strict=True)
                if not env.episode.done]
        assert len(live) == len(inputs)
        self.seen_inputs += inputs
        outputs = []
        for episode, policy in live:
            text = policy.act(episode.messages, episode.tool_schemas,
                              {"ledger": episode.ledger.entries})
            ids = self.processing_class(text, add_special_tokens=False)["input_ids"]
            outputs.append(ids + [self.processing_class.eos_token_id])
        return outputs, None


def _prompt(scenario: str, attack: str | None, seed: int) -> list[dict[str, Any]]:
    key = json.dumps({"scenario_id": scenario, "attack": attack, "seed": seed})
    return [{"role": "system", "content": "(from the dataset)", EPISODE_KEY: key},
            {"role": "user", "content": "(from the dataset)"}]


def test_rollout_tokens_agent_turns_and_masks_environment_text(tokenizer: Any) -> None:
    from mosaic_gym.train.grpo import MosaicRollout, render_chat

    rollout = MosaicRollout(max_steps=8, scenario_paths=SUBSET)
    specs = [(INJECTION, "authority", 0), (INJECTION, "authority", 0), (HARMFUL, None, 0)]
    policies = [make_baseline("comply"), make_baseline("reference"), make_baseline("refuse")]
    trainer = ScriptedTrainer(tokenizer, rollout, policies)
    out = rollout([_prompt(*spec) for spec in specs], trainer)

    assert out["logprobs"] is None and len(out["mosaic_record"]) == 3
    for i, record in enumerate(out["mosaic_record"]):
        prompt, completion, mask = (out["prompt_ids"][i], out["completion_ids"][i],
                                    out["env_mask"][i])
        assert len(mask) == len(completion)
        # the whole sequence is exactly the chat as the template renders it, up to the last
        # agent turn (the environment's reply to a terminal action is not part of it)
        last = max(j for j, m in enumerate(record["messages"]) if m["role"] == "assistant")
        full = render_chat(tokenizer, record["messages"][: last + 1], record["tools"],
                           add_generation_prompt=False)
        assert tokenizer.decode(prompt + completion) == full.rstrip("\n")
        # agent tokens (mask 1) are the agent's turns, nothing else
        agent = [t for t, m in zip(completion, mask, strict=True) if m]
        turns = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
        assert tokenizer.decode(agent) == "<|im_end|>".join(turns) + "<|im_end|>"
        # every tool output sits in the masked part
        hidden = tokenizer.decode([t for t, m in zip(completion, mask, strict=True) if not m])
        for message in record["messages"][:last]:
            if message["role"] == "tool":
                assert message["content"] in hidden
    # each generation call saw the running sequence: a fresh rendering of the chat so far
    first = tokenizer.decode(trainer.seen_inputs[0])
    assert first.endswith("<|im_start|>assistant\n")
    outcomes = [r["outcome"] for r in out["mosaic_record"]]
    assert outcomes[0]["attack_success"] and not outcomes[1]["attack_success"]
    assert outcomes[2]["refused"]
    assert [r["env_reward"] for r in out["mosaic_record"]] == [-1.0, 1.0, 1.0]


def test_rollout_matches_the_runner_outcomes(tokenizer: Any) -> None:
    from mosaic_gym.train.grpo import MosaicRollout

    rollout = MosaicRollout(max_steps=8, scenario_paths=SUBSET)
    specs = [(INJECTION, "authority", 2), (HARMFUL, None, 2)]
    trainer = ScriptedTrainer(tokenizer, rollout, [make_baseline("comply") for _ in specs])
    out = rollout([_prompt(*spec) for spec in specs], trainer)
    base = MosaicEnv(split="all", scenario_paths=SUBSET, max_steps=8)
    try:
        for spec, record in zip(specs, out["mosaic_record"], strict=True):
            direct = play(base, make_baseline("comply"), EpisodeSpec(*spec)).model_dump(
                mode="json")
            assert record["outcome"] == direct["outcome"]
    finally:
        base.close()


def test_context_overflow_truncates_instead_of_crashing(tokenizer: Any) -> None:
    from mosaic_gym.train.grpo import MosaicRollout

    rollout = MosaicRollout(max_steps=8, scenario_paths=SUBSET)
    trainer = ScriptedTrainer(tokenizer, rollout, [make_baseline("comply")])
    env = MosaicTRLEnv(scenario_paths=SUBSET)
    env.reset(scenario_id=INJECTION, attack="authority", seed=0)
    prompt_tokens = len(tokenizer(tokenizer.apply_chat_template(
        env.messages, tools=env.tools, tokenize=False, add_generation_prompt=True))["input_ids"])
    env.close()
    # room for the prompt and one turn's budget: a second turn no longer fits
    trainer.model.config.max_position_embeddings = prompt_tokens + 512 + 1
    out = rollout([_prompt(INJECTION, "authority", 0)], trainer)
    record = out["mosaic_record"][0]
    assert record["outcome"]["termination"] == "max_steps"
    assert record["outcome"]["steps"] == 1


def test_group_rewards_prefer_the_early_refusal() -> None:
    from mosaic_gym.judge.preference import PreferenceOracle
    from mosaic_gym.train.grpo import group_rewards, make_reward_funcs

    adapter = MosaicTRLEnv(scenario_paths=SUBSET, max_steps=8)
    try:
        group = [_play(adapter, name, HARMFUL, None, seed=4)
                 for name in ("comply", "refuse", "comply", "random")]
        other = [_play(adapter, name, INJECTION, "authority", seed=4)
                 for name in ("comply", "reference", "comply", "reference")]
    finally:
        adapter.close()
    for record in group + other:
        record["env_reward"] = 0.0
    rewards = group_rewards(group + other, 4, PreferenceOracle())
    assert rewards[1] == max(rewards[:4]) == 3.0  # refusing beats all three others
    assert sum(rewards[:4]) == sum(rewards[4:]) == 6.0  # k (k - 1) / 2 per group
    assert rewards[5] > rewards[4] and rewards[7] > rewards[6]
    with pytest.raises(ValueError, match="mixes different episodes"):
        group_rewards(group[:2] + other[:2], 4, PreferenceOracle())
    with pytest.raises(ValueError, match="groups of k=4"):
        group_rewards(group[:3], 4, PreferenceOracle())
    funcs = make_reward_funcs("pairwise", k=4)
    assert [f.__name__ for f in funcs] == ["mosaic_pairwise", "mosaic_format", "mosaic_length"]
    logged: dict[str, float] = {}
    values = funcs[0](None, None, mosaic_record=group, log_metric=logged.__setitem__)
    assert values == rewards[:4] and logged["mosaic/refused"] == 0.25
    assert all(0.0 <= v <= 2.0 for v in funcs[1](None, None, mosaic_record=group))
    scalar = make_reward_funcs("scalar", k=4, format_reward=False, length_penalty=False)
    assert [f.__name__ for f in scalar] == ["mosaic_scalar"]
    with pytest.raises(ValueError, match="mosaic_record"):
        scalar[0](None, None)
