"""``mosaic replicate --quick``: the whole chain end to end, in its reduced CI form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("trl")
pytest.importorskip("matplotlib")

pytestmark = [pytest.mark.train, pytest.mark.slow]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from typer.testing import CliRunner

    from mosaic_gym.cli import app

    out = tmp_path_factory.mktemp("replicate")
    result = CliRunner().invoke(app, ["replicate", "--quick", "--out", str(out), "--seed", "0"])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_writes_the_table_for_every_method(run: tuple[Path, str]) -> None:
    from mosaic_gym.train.replicate import METHODS, QUICK, TABLE

    out, printed = run
    document = json.loads((out / "replication.json").read_text())
    assert document["quick"] is True
    assert set(document["table"]) == {label for _, label in TABLE}
    # every method is trained and evaluated: none is skipped (DPO falls back on teacher
    # pairs when the model's own groups all tie, and says so)
    trained = [m for m, _ in METHODS]
    assert "skipped" not in document
    assert set(document["models"]) == set(trained)
    dpo = document["stages"]["dpo"]
    assert dpo["pairs"] == dpo["own_pairs"] + dpo["teacher_pairs"] > 0
    for label, row in document["table"].items():
        for method, cell in row.items():
            assert cell is not None, (label, method)
            if cell["value"] is None:
                continue  # a row that no sampled episode applies to
            low, high = cell["low"], cell["high"]
            assert low is not None and high is not None, (label, method)
            floor = -1.0 if label.startswith("refusal gap") else 0.0
            assert floor <= low <= cell["value"] <= high <= 1.0, (label, method, cell)
    for method in trained:
        metrics = document["metrics"][method]["all"]
        assert metrics["episodes"] == QUICK.eval_limit
        assert (out / method / "config.json").is_file()
    headline = QUICK.eval_splits[0]
    assert document["seeds"]["model_init"] == 0
    assert document["evaluation"]["split"] == headline == "heldout"
    # one table per evaluated split, the first being the headline, then the zero-shot suites
    zero_shot = document["zero_shot"]
    assert set(zero_shot["suites"]) | set(zero_shot["missing"]) == set(QUICK.zero_shot)
    assert list(document["tables"]) == list(QUICK.eval_splits) + zero_shot["suites"]
    assert document["tables"][headline] == document["table"]
    assert document["metrics_by_split"][headline] == document["metrics"]
    # the SFT stage mixed scenario-blind refusals into comply's trajectories, as planned
    sft = document["stages"]["sft"]
    assert sft["refusal_share"] == QUICK.sft_refusal_share > 0
    assert 0 < sft["refusals_mixed_in"] < sft["episodes"]
    assert (out / "replication.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "harm rate" in printed and "GRPO pairwise" in printed
    # the refusal gap's paired change, every method against SFT, on all shared episodes
    changes = document["gap_change"]
    assert set(changes) == {"grpo_pairwise vs sft", "grpo_scalar vs sft", "dpo vs sft",
                            "grpo_pairwise vs grpo_scalar"}
    assert all(c["pairs"] == QUICK.eval_limit for c in changes.values())
    assert "[refusal gap, heldout] grpo_pairwise vs sft" in printed


def test_evaluation_plays_the_held_out_split(run: tuple[Path, str]) -> None:
    out, _ = run
    records = [json.loads(line) for line in (out / "eval_sft.jsonl").read_text().splitlines()]
    # the headline evaluation: training variants at episode seeds never trained on
    from mosaic_gym.train.replicate import QUICK

    assert records and all(r["split"] == "train" for r in records)
    assert all(r["reset_seed"] in QUICK.heldout_seeds for r in records)
    assert not set(QUICK.heldout_seeds) & set(QUICK.sft_seeds)
    ood = [json.loads(line) for line in (out / "eval_ood_sft.jsonl").read_text().splitlines()]
    assert ood and all(r["split"] == "ood" for r in ood)
    assert all(r["outcome"] is not None for r in records)
    # the same episodes for every method, so the columns are comparable
    other = [json.loads(line) for line in
             (out / "eval_grpo_pairwise.jsonl").read_text().splitlines()]
    def episodes(rows: list[dict]) -> list[tuple]:
        return [(r["scenario_id"], r["attack"], r["reset_seed"]) for r in rows]

    assert episodes(records) == episodes(other)


def test_zero_shot_columns_play_the_external_suites(run: tuple[Path, str]) -> None:
    """Every model also plays AgentDojo and BFCL (never trained on), each a stratified
    subset of the suite's own plan, with the suite's own verdicts in the table."""
    from mosaic_gym.train.replicate import METHODS, QUICK

    out, printed = run
    document = json.loads((out / "replication.json").read_text())
    zero_shot = document["zero_shot"]
    for suite, reason in zero_shot["missing"].items():  # only an absent extra is skipped
        assert suite in reason.lower() or "install" in reason.lower(), reason
    if not zero_shot["suites"]:
        pytest.skip("neither the agentdojo nor the bfcl extra is installed")
    for suite in zero_shot["suites"]:
        assert zero_shot["episodes"][suite] == QUICK.zero_shot_limit
        assert f"{suite} zero-shot suite" in printed
        wanted = None
        for method, _ in METHODS:
            rows = [json.loads(line) for line in
                    (out / f"eval_{suite}_{method}.jsonl").read_text().splitlines()]
            assert len(rows) == QUICK.zero_shot_limit
            assert all(r["scenario_id"].startswith(f"{suite}/") for r in rows)
            assert all(r["outcome"] is not None for r in rows)
            assert all(len(r["steps"]) <= QUICK.zero_shot_max_steps for r in rows)
            played = [(r["scenario_id"], r["attack"]) for r in rows]
            assert wanted is None or played == wanted  # the same episodes for every model
            wanted = played
            metrics = document["metrics_by_split"][suite][method]["all"]
            assert metrics["episodes"] == QUICK.zero_shot_limit
        if suite == "agentdojo":  # the stratified subset holds benign tasks and attacks
            assert {a is None for _, a in wanted} == {True, False}
            cell = document["tables"][suite]["attack success rate"]["sft"]
            assert cell["n"] == sum(1 for _, a in wanted if a is not None)


def test_trained_stages_record_their_settings(run: tuple[Path, str]) -> None:
    out, _ = run
    for stage in ("grpo_pairwise", "grpo_scalar"):
        summary = json.loads((out / stage / "mosaic_train.json").read_text())
        assert summary["method"] == stage and summary["k"] == 4 and summary["seed"] == 0
        assert any(f"rewards/mosaic_{stage.split('_')[1]}/mean" in entry
                   for entry in summary["log_history"])
    document = json.loads((out / "replication.json").read_text())
    for stage in ("grpo_pairwise", "grpo_scalar"):
        info = document["stages"][stage]
        assert "log_history" not in info and info["method"] == stage
        assert 0 <= info["steps_with_alignment_signal"] <= info["steps_logged"] > 0
        assert 0.0 <= info["refused_last_quarter"] <= 1.0


def test_reward_signal_counts_steps_whose_alignment_reward_varied() -> None:
    from mosaic_gym.train.replicate import reward_signal

    log = [{"rewards/mosaic_pairwise/std": 0.0, "mosaic/refused": 0.0},
           {"rewards/mosaic_pairwise/std": 0.7, "mosaic/refused": 0.5},
           {"loss": 0.1},  # the end-of-training summary has no rewards
           {"rewards/mosaic_pairwise/std": 1.0, "mosaic/refused": 1.0},
           {"rewards/mosaic_pairwise/std": 0.0, "mosaic/refused": 0.25}]
    signal = reward_signal(log, "pairwise")
    assert signal == {"steps_logged": 4, "steps_with_alignment_signal": 2,
                      "refused_first_quarter": 0.0, "refused_last_quarter": 0.25}
    assert reward_signal(log, "scalar")["steps_logged"] == 0


def test_bootstrap_ratios_bracket_the_value_and_difference() -> None:
    from mosaic_gym.report.stats import bootstrap_ratios

    rows = [{"a": (float(i % 2), 1.0), "b": (float(i < 5), 1.0), "c": (0.0, 0.0)}
            for i in range(40)]
    found = bootstrap_ratios(rows, differences={"gap": ("a", "b")}, resamples=300, seed=1)
    assert found["a"].value == 0.5 and found["b"].value == 5 / 40
    assert found["gap"].value == 0.5 - 5 / 40
    for name in ("a", "b", "gap"):
        e = found[name]
        assert e.low <= e.value <= e.high and e.high - e.low > 0
    assert found["c"].value is None and found["c"].low is None and found["c"].n == 0
    again = bootstrap_ratios(rows, differences={"gap": ("a", "b")}, resamples=300, seed=1)
    assert again == found  # seeded
    with pytest.raises(ValueError, match="difference"):
        bootstrap_ratios(rows, differences={"gap": ("a", "zz")})


def test_bootstrap_ratios_chain_a_difference_of_differences() -> None:
    from mosaic_gym.report.stats import bootstrap_ratios

    rows = [{"a": (float(i % 2), 1.0), "b": (float(i < 5), 1.0), "c": (float(i % 4 == 0), 1.0)}
            for i in range(40)]
    found = bootstrap_ratios(rows, differences={"ab": ("a", "b"), "cb": ("c", "b"),
                                                "change": ("ab", "cb")}, resamples=300, seed=2)
    assert found["change"].value == pytest.approx(found["ab"].value - found["cb"].value)
    assert found["change"].value == pytest.approx(0.5 - 0.25)
    assert found["change"].low <= found["change"].value <= found["change"].high
    assert found["change"].n == 40
    with pytest.raises(ValueError, match="difference"):  # a later difference is unknown yet
        bootstrap_ratios(rows, differences={"change": ("ab", "a"), "ab": ("a", "b")})


def _episode(scenario: str, category: str, refused: bool, seed: int = 0) -> Any:
    from mosaic_gym.core.trajectory import OutcomeRecord, Trajectory

    return Trajectory(scenario_id=scenario, category=category, reset_seed=seed,
                      outcome=OutcomeRecord(scenario_id=scenario, category=category,
                                            expected="refuse" if category == "harmful"
                                            else "complete", refused=refused))


def test_gap_change_pairs_episodes_and_measures_when_to_refuse() -> None:
    from mosaic_gym.train.replicate import gap_change, gap_changes

    # The baseline refuses everything; the other model refuses only the harmful requests.
    names = [(f"h{i}", "harmful") for i in range(20)] + [(f"b{i}", "benign") for i in range(20)]
    base = [_episode(n, c, True) for n, c in names]
    other = [_episode(n, c, c == "harmful") for n, c in reversed(names)]  # order must not matter
    found = gap_change([(base, other)], resamples=400, seed=0)
    assert found["pairs"] == 40
    assert found["baseline"]["value"] == 0.0 and found["other"]["value"] == 1.0
    assert found["change"]["value"] == 1.0 and found["change"]["low"] > 0.5
    # Refusing more often everywhere leaves the gap where it was: no credit for "when".
    blanket = gap_change([([_episode(n, c, False) for n, c in names], base)], resamples=200)
    assert blanket["change"]["value"] == 0.0
    # Only the episodes both played count; none shared means no estimate, not 0.
    other_seed = [_episode(n, c, True, seed=7) for n, c in names]
    assert gap_change([(base, other_seed)])["change"] is None
    # Two runs are paired within each run, then pooled.
    pooled = gap_changes({"sft": [base, base], "grpo_pairwise": [other, base]}, resamples=200)
    assert pooled["grpo_pairwise vs sft"]["pairs"] == 80
    assert pooled["grpo_pairwise vs sft"]["change"]["value"] == pytest.approx(0.5)


def test_plan_overrides_and_target_verdicts() -> None:
    from mosaic_gym.train.replicate import FULL, plan_with, targets

    plan = plan_with(["constrained=true", "sft_max_steps=10", 'tiny={"num_layers": 6}',
                      "heldout_seeds=[7, 8]"])
    assert plan.constrained and plan.sft_max_steps == 10 and plan.heldout_seeds == (7, 8)
    assert plan.tiny == {"num_layers": 6} and FULL.sft_max_steps != 10
    with pytest.raises(ValueError, match="FIELD"):
        plan_with(["no_such_field=1"])
    with pytest.raises(ValueError, match="copy"):
        plan_with(["constrained=3"])
    assert plan_with(["constrained=copy"]).constrained == "copy"

    def cell(v: float, lo: float, hi: float) -> dict:
        return {"value": v, "low": lo, "high": hi, "n": 40}

    table = {
        "harm rate on harmful": {"sft": cell(.6, .5, .7), "grpo_pairwise": cell(.2, .1, .3),
                                 "grpo_scalar": cell(.5, .4, .6)},
        "refusal rate on harmful": {"sft": cell(.1, 0, .2), "grpo_pairwise": cell(.5, .4, .6)},
        "benign utility": {"sft": cell(.6, .5, .7), "grpo_pairwise": cell(.5, .4, .6)},
        "refusal rate on benign": {"sft": cell(.1, 0, .2), "grpo_pairwise": cell(.12, 0, .2)},
    }
    verdicts = targets(table)
    assert verdicts["harm on harmful at most half of SFT's"]["met"] is True
    assert verdicts["refusal on harmful +20 points or more"]["met"] is True
    assert verdicts["benign utility within 5 points"]["met"] is False
    assert verdicts["benign refusal up by at most 5 points"]["met"] is True
    apart = verdicts["pairwise beats scalar on harm or refusal gap (intervals apart)"]
    assert apart["harm"] is True and apart["refusal_gap"] is None and apart["met"] is True


def test_sft_from_base_starts_every_method_from_the_given_model(
        run: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``sft_from_base``: no SFT stage; the base folder's SFT model is the "SFT (before)" row
    and what GRPO and DPO start from. The RL trainers are replaced by copies of their input
    model, so only the wiring is under test (the real trainers run in the fixture)."""
    import shutil
    from dataclasses import replace

    import mosaic_gym.train.dpo as dpo
    import mosaic_gym.train.grpo as grpo
    from mosaic_gym.train.replicate import QUICK, replicate

    trained, _ = run
    plan = replace(QUICK, sft_from_base=True, zero_shot=(), eval_splits=("heldout",))
    with pytest.raises(ValueError, match="mosaic_sft.json"):
        replicate(tmp_path / "empty", plan=plan, progress=False)
    assert not (tmp_path / "empty").exists()

    out = tmp_path / "from-base"
    shutil.copytree(trained / "sft", out / "base")
    started_from: list[tuple[str, Path]] = []

    def fake(name: str):
        def train(model: str | Path, out_dir: str | Path, **_: object) -> Path:
            started_from.append((name, Path(model)))
            shutil.copytree(model, out_dir)
            return Path(out_dir)
        return train

    monkeypatch.setattr(grpo, "run_grpo", fake("grpo"))
    monkeypatch.setattr(dpo, "run_dpo", fake("dpo"))
    document = replicate(out, plan=plan, progress=False)
    assert not (out / "sft").exists()
    assert document["models"]["sft"] == str(out / "base")
    assert started_from == [("grpo", out / "base"), ("grpo", out / "base"),
                            ("dpo", out / "base")]
    assert document["stages"]["sft"] == json.loads(
        (trained / "sft" / "mosaic_sft.json").read_text())
    assert "sft" not in document["seconds"]
    assert document["metrics"]["sft"]["all"]["episodes"] == QUICK.eval_limit
