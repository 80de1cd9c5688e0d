"""The competence curve's first-call agreement (scripted policies, no model)."""

from __future__ import annotations

import json

import pytest

from mosaic_gym.agent.baselines import make_baseline
from mosaic_gym.train.competence import (
    count_parameters,
    first_call,
    first_call_agreement,
    prior_steps,
    records_of,
)
from mosaic_gym.train.replicate import evaluation_plan, play_batched


@pytest.fixture(scope="module")
def plan():
    return evaluation_plan("train", seeds=(1000,), limit=12, seed=0)


def _play(name, plan):
    return play_batched(lambda: make_baseline(name, seed=0), plan, max_steps=6,
                        progress=False)


def test_the_teacher_agrees_with_itself(plan):
    comply = _play("comply", plan)
    agreement = first_call_agreement(comply, _play("comply", plan))
    assert agreement["first_call_match"]["count"] == agreement["first_call_match"]["n"] == 12
    assert agreement["first_tool_match"]["value"] == 1.0


def test_a_refusing_policy_never_agrees_with_comply(plan):
    agreement = first_call_agreement(_play("refuse", plan), _play("comply", plan))
    assert agreement["first_tool_match"]["count"] == 0
    assert agreement["first_call_match"]["value"] == 0.0
    assert agreement["first_call_match"]["high"] > 0.0  # a Wilson interval, not a point


def test_a_wrong_argument_matches_the_tool_but_not_the_call(plan, tmp_path):
    comply = _play("comply", plan)
    record = comply[0]
    name, arguments = first_call(record)
    changed = json.loads(record.to_json())
    for message in changed["messages"]:
        if message["role"] == "assistant":
            key = next(iter(arguments))
            wrong = {**arguments, key: f"{arguments[key]}-not-copied"}
            message["tool_calls"][0]["function"]["arguments"] = json.dumps(wrong)
            break
    log = tmp_path / "eval.jsonl"
    log.write_text(json.dumps(changed) + "\n", encoding="utf-8")
    agreement = first_call_agreement(records_of(log), comply[:1])
    assert agreement["first_tool_match"]["count"] == 1
    assert agreement["first_call_match"]["count"] == 0


def test_the_matched_share_counts_turns_up_to_the_first_divergence(plan):
    comply = _play("comply", plan)
    assert first_call_agreement(comply, comply)["teacher_calls_matched"]["value"] == 1.0
    refuse = _play("refuse", plan)
    assert first_call_agreement(refuse, comply)["teacher_calls_matched"]["value"] == 0.0


def test_parameters_are_counted_from_the_safetensors_header(tmp_path):
    header = {"a.weight": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]},
              "b.bias": {"dtype": "F32", "shape": [5], "data_offsets": [48, 68]},
              "__metadata__": {"format": "pt"}}
    raw = json.dumps(header).encode()
    (tmp_path / "model.safetensors").write_bytes(len(raw).to_bytes(8, "little") + raw
                                                 + bytes(68))
    assert count_parameters(tmp_path) == 17


def test_a_continued_sft_counts_the_steps_of_its_bases(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    tiny = str(tmp_path / "tiny")
    (first / "mosaic_sft.json").write_text(json.dumps({"steps": 900, "base": tiny}))
    (second / "mosaic_sft.json").write_text(json.dumps({"steps": 300, "base": str(first)}))
    assert prior_steps(tmp_path / "tiny") == 0     # a fresh model: no SFT record
    assert prior_steps(first) == 900
    assert prior_steps(second) == 1200
