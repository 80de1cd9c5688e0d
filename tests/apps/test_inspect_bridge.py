"""The Inspect AI bridge, offline: Inspect's ``mockllm`` model plays mosaic episodes.

Every mock output carries its token usage: without it Inspect counts tokens itself and
would try to download a tokenizer, which CI cannot.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("inspect_ai", reason="needs the inspect extra")

from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.log import read_eval_log  # noqa: E402
from inspect_ai.model import ModelOutput, ModelUsage, get_model  # noqa: E402

from mosaic_gym.bridges.inspect_ai import export_run, mosaic_task  # noqa: E402
from mosaic_gym.evaluate import evaluate_policy  # noqa: E402
from mosaic_gym.report.runs import load_run  # noqa: E402

REFUSAL = ('<think>This could be unsafe.</think>\n<tool_call>{"name": "refusal_tool", '
           '"arguments": {"reason": "not safe"}}</tool_call>')


def with_usage(text: str) -> ModelOutput:
    output = ModelOutput.from_content(model="mockllm", content=text)
    output.usage = ModelUsage(input_tokens=100, output_tokens=max(1, len(text) // 4),
                              total_tokens=100 + max(1, len(text) // 4))
    return output


def scripted(texts: Callable[[list], str]) -> Callable[..., ModelOutput]:
    def generate(input, tools, tool_choice, config) -> ModelOutput:  # noqa: A002
        assert tool_choice == "auto" and {t.name for t in tools} >= {"refusal_tool"}
        return with_usage(texts(input))
    return generate


def test_a_refusing_mock_is_scored_from_the_environments_outcome(tmp_path: Path) -> None:
    model = get_model("mockllm/model", custom_outputs=scripted(lambda _: REFUSAL))
    task = mosaic_task(split="test", attack="all", limit=12)
    [log] = inspect_eval(task, model=model, log_dir=str(tmp_path), display="none")
    assert log.status == "success" and len(log.samples) == 12
    for sample in log.samples:
        score = sample.scores["mosaic_scorer"]
        outcome = score.metadata["outcome"]
        assert outcome["refused"] and outcome["steps"] == 1
        assert score.value["refused"] == 1.0 and score.value["harm"] == 0.0
        # Refusing is correct exactly where the scenario expects a refusal.
        assert score.value["correct"] == float(outcome["expected"] == "refuse")
        assert sample.id == f"{outcome['scenario_id']}|{outcome['attack'] or 'none'}|" \
                            f"{sample.metadata['seed']}"
    # Samples are the plan of mosaic eval: one per (variant, attack, seed).
    ids = [s.id for s in log.samples]
    assert len(set(ids)) == len(ids)


def test_multi_turn_episodes_match_mosaic_eval(tmp_path: Path) -> None:
    """A mock replaying the 'comply' baseline's turns gets exactly mosaic eval's outcomes."""
    run = tmp_path / "run"
    evaluate_policy(policy="comply", env_id="mosaic/Injection-v0", split="test",
                    attack="all", seeds=range(1), out=run, limit=6, quiet=True)
    records = load_run(run).records
    expected = {(r["scenario_id"], r["attack"] or "none"): r["outcome"] for r in records}
    chats = [[(m["role"], m["content"]) for m in r["messages"] if m["role"] != "system"]
             for r in records]

    def replay(messages: list) -> str:
        # The environment is deterministic under its seed: the chat so far is a prefix of
        # exactly one recorded episode, whose next assistant turn is the answer.
        so_far = [(m.role, m.text) for m in messages if m.role != "system"]
        for chat in chats:
            if chat[:len(so_far)] == so_far and chat[len(so_far)][0] == "assistant":
                return chat[len(so_far)][1]
        raise AssertionError(f"no recorded episode continues {so_far[-1]!r}")

    model = get_model("mockllm/model", custom_outputs=scripted(replay))
    task = mosaic_task(env_id="mosaic/Injection-v0", split="test", attack="all", limit=6)
    [log] = inspect_eval(task, model=model, log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    assert len(log.samples) == 6
    for sample in log.samples:
        outcome = sample.scores["mosaic_scorer"].metadata["outcome"]
        reference = expected[(outcome["scenario_id"], outcome["attack"] or "none")]
        assert outcome == reference
        assert sample.scores["mosaic_scorer"].value["leaked"] == float(bool(reference["leaks"]))


def test_a_native_tool_call_becomes_a_mosaic_block() -> None:
    from mosaic_gym.bridges.inspect_ai import mosaic_text
    from mosaic_gym.protocol.format import parse_action

    output = ModelOutput.for_tool_call(model="mockllm", tool_name="read_file",
                                       tool_arguments={"path": "/home/user/a.txt"},
                                       content="<think>Read it first.</think>")
    parsed = parse_action(mosaic_text(output))
    assert parsed.plan == "Read it first."
    assert parsed.tool_call.name == "read_file"
    assert dict(parsed.tool_call.arguments) == {"path": "/home/user/a.txt"}


def test_a_mosaic_run_exports_to_an_inspect_log(tmp_path: Path) -> None:
    run = tmp_path / "run"
    evaluate_policy(policy="comply", env_id="mosaic/All-v0", split="test", attack="all",
                    seeds=range(1), out=run, limit=8, quiet=True)
    path = export_run(run, tmp_path / "logs")
    log = read_eval_log(str(path))  # what `inspect view` reads
    records = load_run(run).records
    assert log.status == "success" and log.eval.model == "mosaic/comply"
    assert len(log.samples) == len(records)
    by_id = {f"{r['scenario_id']}|{r['attack'] or 'none'}|{r['seed']}": r for r in records}
    assert {sample.id for sample in log.samples} == set(by_id)
    for sample in log.samples:
        record = by_id[sample.id]
        score = sample.scores["mosaic_scorer"]
        assert score.metadata["outcome"] == record["outcome"]
        assert [m.role for m in sample.messages] == [m["role"] for m in record["messages"]]
    correct = next(s for s in log.results.scores if s.name == "correct")
    assert correct.metrics["mean"].value == pytest.approx(
        sum(r["outcome"]["correct"] for r in records) / len(records))
