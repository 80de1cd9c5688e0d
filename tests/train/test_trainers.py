"""Training recipes and the DPO / GRPO trainers, each for a couple of steps on CPU."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mosaic_gym.train.recipes import RecipeError, TrainRecipe, load_recipe, parse_recipe

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "scenarios"
SUBSET = [LIBRARY / "harmful" / "email_harass_coworker.yaml",
          LIBRARY / "injection" / "email_summary_exfil.yaml",
          LIBRARY / "benign" / "email_reply_with_report.yaml"]
MINIMAL = {"method": "grpo_pairwise", "model": "some/model", "output_dir": "runs/x"}


# -- recipes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted((ROOT / "trainers").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_are_valid(path: Path) -> None:
    pytest.importorskip("trl")
    from mosaic_gym.train.recipes import check_trl_keys, config_class_for

    recipe = load_recipe(path)
    assert recipe.name == path.stem
    check_trl_keys(config_class_for(recipe.method), recipe)
    if recipe.method.startswith("grpo"):
        assert recipe.k == 4 and recipe.l0 == 400
    if recipe.chat_template:
        assert (ROOT / recipe.chat_template).is_file()


def test_defaults_and_overrides() -> None:
    recipe = parse_recipe(MINIMAL)
    assert (recipe.k, recipe.l0, recipe.env.split, recipe.generation.use_vllm) == (
        4, 400, "train", "auto")
    assert recipe.reward == "pairwise"
    changed = recipe.with_overrides(output_dir="elsewhere", max_steps=3)
    assert (changed.output_dir, changed.max_steps) == ("elsewhere", 3)
    with pytest.raises(RecipeError, match="at least 1"):
        recipe.with_overrides(max_steps=0)


@pytest.mark.parametrize("change, message", [
    ({"method": "ppo"}, r"\[method\]"),
    ({"k": 1}, r"\[k\]"),
    ({"colour": "blue"}, r"\[colour\]"),
    ({"env": {"split": "validation"}}, r"\[env.split\]"),
    ({"env": {"seeds": []}}, "at least one seed"),
    ({"trl": {"num_generations": 8}}, "through the recipe's own fields"),
    ({"model": "tiny"}, "untrained tiny model"),
    ({"method": "sft", "chat_template": "mosaic-chatml"}, "chat_template is for dpo"),
])
def test_bad_recipes_name_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        parse_recipe({**MINIMAL, **change}, "bad.yaml")


def test_recipe_files_errors(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="no such recipe"):
        load_recipe(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("method: [unclosed\n", encoding="utf-8")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(RecipeError, match="must be a YAML mapping"):
        load_recipe(listed)


def test_unknown_trl_keys_get_suggestions() -> None:
    pytest.importorskip("trl")
    from trl import GRPOConfig

    from mosaic_gym.train.recipes import check_trl_keys

    recipe = parse_recipe({**MINIMAL, "trl": {"learning_rat": 1e-5}})
    with pytest.raises(RecipeError, match="did you mean learning_rate"):
        check_trl_keys(GRPOConfig, recipe)
    sft = TrainRecipe(method="sft", model="tiny", output_dir="x", trl={"beta": 0.1})
    with pytest.raises(RecipeError, match="beta"):
        check_trl_keys(GRPOConfig, sft)


def test_cli_train_reports_a_bad_recipe(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mosaic_gym.cli import app

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**MINIMAL, "k": 0}), encoding="utf-8")
    result = CliRunner().invoke(app, ["train", "--recipe", str(bad)])
    assert result.exit_code == 2
    assert "[k]" in result.output


# -- trainers --------------------------------------------------------------------------------

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("trl")
pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mosaic_gym.train.tiny import build_tiny

    return build_tiny(tmp_path_factory.mktemp("tiny") / "base", scenario_paths=SUBSET,
                      split="all", vocab_size=600, hidden_size=32, num_layers=1, num_heads=2,
                      num_kv_heads=1, intermediate_size=64, max_positions=8192)


def _weights(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_grpo_pairwise_two_steps(tiny: Path, tmp_path: Path) -> None:
    from mosaic_gym.train.grpo import run_grpo

    out = run_grpo(tiny, tmp_path / "grpo", reward="pairwise", split="all", limit=4, k=2,
                   max_steps=2, max_new_tokens=16, env_max_steps=2, scenario_paths=SUBSET,
                   trl={"learning_rate": 1e-3}, quiet=True)
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    summary = json.loads((out / "mosaic_train.json").read_text())
    steps = [entry for entry in summary["log_history"] if "rewards/mosaic_pairwise/mean" in entry]
    assert len(steps) == 2 and summary["rollouts"] == 4
    assert summary["loss_head"] == "compact"  # the CPU run scores completion tokens only
    for entry in steps:
        # group rewards of k rollouts always sum to k (k - 1) / 2: a mean of 0.5 for k = 2
        assert entry["rewards/mosaic_pairwise/mean"] == pytest.approx(0.5)
        assert 0.0 <= entry["rewards/mosaic_format/mean"] <= 2.0
        assert entry["rewards/mosaic_length/mean"] <= 0.0


def test_grpo_scalar_one_step(tiny: Path, tmp_path: Path) -> None:
    from mosaic_gym.train.grpo import run_grpo

    out = run_grpo(tiny, tmp_path / "grpo", reward="scalar", split="all", limit=2, k=2,
                   max_steps=1, max_new_tokens=16, env_max_steps=2, scenario_paths=SUBSET,
                   format_reward=False, length_penalty=False, quiet=True)
    summary = json.loads((out / "mosaic_train.json").read_text())
    entry = next(e for e in summary["log_history"] if "rewards/mosaic_scalar/mean" in e)
    assert -1.0 <= entry["rewards/mosaic_scalar/mean"] <= 1.0
    assert not any("mosaic_format" in key for key in entry)


@pytest.fixture(scope="module")
def pairs() -> list[dict[str, Any]]:
    """DPO rows from groups of baseline rollouts of the same episodes (oracle-ranked)."""
    from mosaic_gym.agent.baselines import make_baseline
    from mosaic_gym.envs.mosaic_env import MosaicEnv
    from mosaic_gym.judge.preference import PreferenceOracle
    from mosaic_gym.rollout import EpisodeSpec, play
    from mosaic_gym.train.pairs import build_dpo_pairs

    env = MosaicEnv(split="all", scenario_paths=SUBSET, max_steps=8)
    try:
        groups = [[play(env, make_baseline(name), EpisodeSpec(scenario, attack, 0))
                   for name in ("reference", "comply")]
                  for scenario, attack in [("email.summarise-inbox", "authority"),
                                           ("email.harass-coworker/intimidation", None)]]
    finally:
        env.close()
    return build_dpo_pairs(groups, PreferenceOracle(), pairing="best_worst")


def test_dpo_masks_tool_outputs(tiny: Path, pairs: list[dict[str, Any]]) -> None:
    from transformers import AutoTokenizer

    from mosaic_gym.train.dpo import tokenize_pair

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    row = next(r for r in pairs if any(m["role"] == "tool" for m in r["rejected"]))
    tokens = tokenize_pair(row, tokenizer)
    for side in ("chosen", "rejected"):
        ids, mask = tokens[f"{side}_ids"], tokens[f"{side}_loss_mask"]
        assert len(ids) == len(mask)
        scored = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m])
        turns = [m["content"] for m in row[side] if m["role"] == "assistant"]
        assert scored == "<|im_end|>".join(turns) + "<|im_end|>"
        unscored = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if not m])
        for message in row[side]:
            if message["role"] == "tool":
                assert message["content"] in unscored


def test_dpo_two_steps_moves_the_weights(tiny: Path, pairs: list[dict[str, Any]],
                                         tmp_path: Path) -> None:
    from mosaic_gym.train.dpo import train_dpo

    assert len(pairs) == 2  # the reference beats comply on both episodes
    out = train_dpo(tiny, pairs, tmp_path / "dpo", max_steps=2, quiet=True,
                    trl={"learning_rate": 1e-2, "per_device_train_batch_size": 1})
    before, after = _weights(tiny), _weights(out)
    assert any(not torch.equal(before[name], after[name]) for name in before)
    with pytest.raises(ValueError, match="no preference pairs"):
        train_dpo(tiny, [], tmp_path / "none")


def test_dpo_compact_head_trains_the_same_model(tiny: Path, pairs: list[dict[str, Any]],
                                                tmp_path: Path) -> None:
    """The compact fused head (completion tokens only) changes the cost, not the training:
    the same losses step by step and the same weights as TRL's every-position head."""
    from mosaic_gym.train.dpo import train_dpo

    settings = {"learning_rate": 1e-2, "per_device_train_batch_size": 1}
    trl_out = train_dpo(tiny, pairs, tmp_path / "trl", max_steps=2, quiet=True, trl=settings,
                        compact_head=False)
    compact_out = train_dpo(tiny, pairs, tmp_path / "compact", max_steps=2, quiet=True,
                            trl=settings)

    def losses(folder: Path) -> list[float]:
        state = json.loads((folder / "trainer_state.json").read_text())
        return [entry["loss"] for entry in state["log_history"] if "loss" in entry]

    assert len(losses(trl_out)) == 2
    assert losses(compact_out) == pytest.approx(losses(trl_out), rel=1e-4)
    before, a, b = _weights(tiny), _weights(trl_out), _weights(compact_out)
    assert any(not torch.equal(before[name], a[name]) for name in before)
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5)


def test_rl_head_benchmark_reports_its_tables(tiny: Path, tmp_path: Path,
                                              benchmark_script: Any) -> None:
    """``benchmarks/bench_rl_head.py`` in a reduced form: its tables are complete and the
    two heads give the same DPO loss."""
    bench = benchmark_script("bench_rl_head")
    out = tmp_path / "bench.json"
    argv = ["--model", str(tiny), "--k", "2", "--batches", "1", "--rounds", "1",
            "--dpo-steps", "1", "--grpo-steps", "1", "--grpo-max-new-tokens", "16",
            "--json", str(out)]
    for scenario in SUBSET:
        argv += ["--scenario", str(scenario)]
    bench.main(argv)
    figures = json.loads(out.read_text())
    passes = {(row["head"], row["pass"]): row for row in figures["logprob_pass"]}
    assert set(passes) == {(head, kind) for head in ("trl", "compact")
                           for kind in ("policy fwd+bwd", "reference fwd")}
    for row in passes.values():
        assert 0 < row["labelled"] < row["positions"] and row["seconds"] > 0
    assert set(figures["dpo"]) == {"trl", "compact"}
    trl_row, compact_row = figures["dpo"]["trl"], figures["dpo"]["compact"]
    assert trl_row["steps"] == compact_row["steps"] == 1 and trl_row["pairs"] > 0
    assert compact_row["last_loss"] == pytest.approx(trl_row["last_loss"], rel=1e-4)
    assert {head: row["loss_head"] for head, row in figures["grpo"].items()} == {
        "trl": "trl", "compact": "compact"}
    assert all(row["steps"] == 1 and row["rollouts"] == 8 and row["per_step"] > 0
               for row in figures["grpo"].values())
    with pytest.raises(SystemExit):
        bench.main(["--model", str(tiny), "--rounds", "0"])


def test_cli_trains_from_recipes(tiny: Path, tmp_path: Path) -> None:
    """`mosaic train`: an sft recipe that builds its tiny model, then a GRPO recipe on it."""
    from typer.testing import CliRunner

    from mosaic_gym.cli import app

    env = {"split": "all", "seeds": [0], "limit": 2, "max_steps": 2,
           "scenario_paths": [str(p) for p in SUBSET]}
    sft = {"method": "sft", "model": "tiny", "output_dir": str(tmp_path / "sft"),
           "tiny": {"vocab_size": 600, "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                    "num_kv_heads": 1, "intermediate_size": 64},
           "env": env, "trl": {"per_device_train_batch_size": 1}}
    grpo = {"method": "grpo_scalar", "model": str(tmp_path / "sft"), "output_dir": "unused",
            "k": 2, "env": env, "generation": {"max_new_tokens": 8}}
    runner = CliRunner()
    for name, recipe, extra in [("sft", sft, []),
                                ("grpo", grpo, ["--out", str(tmp_path / "grpo")])]:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
        result = runner.invoke(app, ["train", "--recipe", str(path), "--max-steps", "1", *extra])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "sft" / "base" / "config.json").is_file()
    assert json.loads((tmp_path / "sft" / "mosaic_sft.json").read_text())["steps"] == 1
    summary = json.loads((tmp_path / "grpo" / "mosaic_train.json").read_text())
    assert summary["method"] == "grpo_scalar" and summary["log_history"][-1]["step"] == 1
