"""Run files lose nothing (issue 10 item 5): UTF-8 always, one writer, eval resumes, data
files load as datasets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mosaic_gym.agent.baselines import ReferencePolicy
from mosaic_gym.errors import RunFileError
from mosaic_gym.evaluate import evaluate_policy
from mosaic_gym.rollout.collect import collect, read_groups
from mosaic_gym.rollout.store import JsonlStore

SURROGATE_TURN = ('<think>x</think><tool_call>{"name": "read_file", "arguments": '
                  '{"path": "\\ud800"}}</tool_call>')


class SurrogatePolicy(ReferencePolicy):
    """Sends a JSON escape of a lone surrogate in its first turn, then refuses."""

    name = "surrogate"

    def act(self, messages, tools, info=None):  # noqa: ANN001
        if len(messages) <= 2:
            return SURROGATE_TURN
        return ('<think>stop</think><tool_call>{"name": "refusal_tool", "arguments": '
                '{"reason": "done"}}</tool_call>')


def test_a_lone_surrogate_is_written_and_read_back(tmp_path: Path) -> None:
    out = collect(lambda: SurrogatePolicy(), out=tmp_path / "s.jsonl", k=2, limit=2,
                  split="all", quiet=True)
    out.read_bytes().decode("utf-8")  # valid UTF-8 throughout
    groups = list(read_groups(out))
    assert len(groups) == 2
    texts = [m["content"] for g in groups for r in g["rollouts"] for m in r["messages"]]
    assert any("\\ud800" in t for t in texts)  # the agent's text, kept as written


def test_a_second_writer_is_refused_and_nothing_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    settings = {"policy": "p"}
    with JsonlStore(path, settings, key=lambda r: r["k"], must_match=("policy",)) as first:
        first.write({"k": "a"})
        with pytest.raises(RunFileError, match="another run"):
            JsonlStore(path, settings, key=lambda r: r["k"], must_match=("policy",))
        first.write({"k": "b"})
    assert [json.loads(line)["k"] for line in path.read_text().splitlines()] == ["a", "b"]


def test_eval_resumes_writes_metrics_as_it_goes_and_never_truncates(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    evaluate_policy(policy="refuse", env_id="mosaic/All-v0", limit=4, out=out, quiet=True)
    lines = (out / "trajectories.jsonl").read_text().splitlines()
    assert len(lines) == 4 and json.loads((out / "metrics.json").read_text())["episodes"] == 4
    # the same command with a larger limit continues: the first 4 stay, byte for byte
    document = evaluate_policy(policy="refuse", env_id="mosaic/All-v0", limit=8, out=out,
                               quiet=True)
    again = (out / "trajectories.jsonl").read_text().splitlines()
    assert again[:4] == lines and document["episodes"] == 8 == document["planned"]
    # another run on the same folder is refused instead of overwriting it
    with pytest.raises(RunFileError, match="different run"):
        evaluate_policy(policy="comply", env_id="mosaic/All-v0", limit=4, out=out, quiet=True)
    assert (out / "trajectories.jsonl").read_text().splitlines() == again
    # --fresh starts over, explicitly
    evaluate_policy(policy="comply", env_id="mosaic/All-v0", limit=2, out=out, quiet=True,
                    fresh=True)
    assert len((out / "trajectories.jsonl").read_text().splitlines()) == 2


def test_a_limited_eval_is_stratified(tmp_path: Path) -> None:
    evaluate_policy(policy="refuse", env_id="mosaic/All-v0", limit=20, out=tmp_path, quiet=True)
    rows = [json.loads(line) for line in (tmp_path / "trajectories.jsonl").read_text()
            .splitlines()]
    categories = [r["category"] for r in rows]
    assert set(categories) == {"benign", "harmful", "injection", "privacy"}
    assert all(categories.count(c) == 5 for c in set(categories))


def test_resumed_collections_load_as_datasets(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "c.jsonl"
    collect("refuse", out=out, k=2, limit=2, split="all", quiet=True)
    collect("refuse", out=out, k=2, limit=4, split="all", quiet=True)  # resumed
    table = datasets.load_dataset("json", data_files=str(out), split="train")
    assert table.num_rows == 4 and set(table["type"]) == {"group"}
