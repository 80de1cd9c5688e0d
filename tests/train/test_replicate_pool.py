"""``mosaic replicate --pool``: finished runs of several training seeds in one table.

The run folders are written from the scripted teachers' trajectories (no model, no torch):
what is tested is the pooling, not a training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mosaic_gym.agent.baselines import make_baseline
from mosaic_gym.train.replicate import evaluation_plan, play_batched, pool

PLAYERS = {"sft": "comply", "grpo_pairwise": "reference", "grpo_scalar": "comply",
           "dpo": "refuse"}


def _run(folder: Path, seed: int, *, limit: int, skip: tuple[str, ...] = ()) -> Path:
    folder.mkdir(parents=True)
    episodes = evaluation_plan("train", seeds=(1000 + seed,), limit=limit, seed=seed)
    for method, player in PLAYERS.items():
        if method in skip:
            continue
        records = play_batched(lambda p=player: make_baseline(p, seed=seed), episodes,
                               max_steps=6, progress=False)
        (folder / f"eval_{method}.jsonl").write_text(
            "".join(r.to_json() + "\n" for r in records), encoding="utf-8")
    (folder / "replication.json").write_text(json.dumps(
        {"seed": seed, "plan": {"eval_splits": ["heldout"]}, "targets": {}, "seconds": {}}))
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    return [_run(root / "s0", 0, limit=12), _run(root / "s1", 1, limit=8, skip=("dpo",))]


def test_pooled_rates_count_the_episodes_of_every_seed(runs, tmp_path):
    document = pool(runs, tmp_path, resamples=200, progress=False)
    table = document["tables"]["heldout"]
    harm = table["harm rate on harmful"]
    # comply harms on every harmful request, the reference teacher on none
    assert harm["sft"]["value"] == 1.0 and harm["grpo_pairwise"]["value"] == 0.0
    refusal = table["refusal rate on harmful"]["grpo_pairwise"]
    per_seed = document["per_seed"]["heldout"]["grpo_pairwise"]
    counted = [per_seed[s]["refusal rate on harmful"]["n"] for s in ("0", "1")]
    assert refusal["n"] == sum(counted) and all(n > 0 for n in counted)
    assert per_seed["0"]["episodes"] == 12 and per_seed["1"]["episodes"] == 8
    # DPO is missing from seed 1: left out and said so, never pooled from one seed
    assert table["harm rate on harmful"]["dpo"] is None
    assert any(line.startswith("heldout/dpo") for line in document["left_out"])
    assert document["targets"]["heldout"]["harm on harmful at most half of SFT's"]["met"]
    assert json.loads((tmp_path / "pooled.json").read_text())["seeds"] == [0, 1]
    # the refusal gap's paired change: comply refuses nothing (gap 0), the reference teacher
    # refuses every harmful request and no benign one (gap 100 points)
    change = document["gap_change"]["heldout"]["grpo_pairwise vs sft"]
    assert change["pairs"] == 12 + 8
    assert change["baseline"]["value"] == 0.0 and change["change"]["value"] == 1.0
    per_seed_change = document["gap_change_per_seed"]
    assert [per_seed_change[s]["heldout"]["grpo_pairwise vs sft"]["pairs"]
            for s in ("0", "1")] == [12, 8]
    assert "dpo vs sft" not in document["gap_change"]["heldout"]  # missing from seed 1


def test_pooling_refuses_a_repeated_seed_and_an_unfinished_run(runs, tmp_path):
    with pytest.raises(ValueError, match="repeat a training seed"):
        pool([runs[0], runs[0]], tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="no replication.json"):
        pool([runs[0], tmp_path], tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="at least two"):
        pool([runs[0]], tmp_path, progress=False)


def test_the_command_prints_the_pooled_table(runs, tmp_path):
    from typer.testing import CliRunner

    from mosaic_gym.cli import app

    result = CliRunner().invoke(app, ["replicate", "--out", str(tmp_path), "--pool",
                                      str(runs[0]), "--pool", str(runs[1])])
    assert result.exit_code == 0, result.output
    assert "pooled over seeds [0, 1]" in result.output
    assert (tmp_path / "pooled.json").is_file()
    bad = CliRunner().invoke(app, ["replicate", "--out", str(tmp_path), "--pool",
                                   str(runs[0]), "--pool", str(runs[0])])
    assert bad.exit_code != 0 and "repeat a training seed" in bad.output
