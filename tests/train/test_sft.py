"""SFT on scripted trajectories: rows, assistant-only masking through TRL, a reduced run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mosaic_gym.core.trajectory import Trajectory

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("trl")

from mosaic_gym.train.sft import (  # noqa: E402
    format_error_rate,
    run_sft,
    sft_rows,
    teacher_records,
    with_random_refusals,
)
from mosaic_gym.train.tiny import IM_END, build_tiny  # noqa: E402

pytestmark = pytest.mark.train

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"
SUBSET = [LIBRARY / "benign" / "email_reply_with_report.yaml",
          LIBRARY / "injection" / "email_summary_exfil.yaml"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("tiny") / "base", scenario_paths=SUBSET,
                      split="all", vocab_size=600, hidden_size=64, num_layers=2, num_heads=2,
                      num_kv_heads=1, intermediate_size=128, max_positions=2048)


@pytest.fixture(scope="module")
def records() -> list[Trajectory]:
    return teacher_records("comply", split="all", seeds=[0], scenario_paths=SUBSET,
                           progress=False)


def test_rows_are_conversational_with_a_tools_column(records: list[Trajectory]) -> None:
    rows = sft_rows(records)
    assert len(rows) == len(records) > 1
    for row, record in zip(rows, records, strict=True):
        assert set(row) == {"messages", "tools"}
        assert json.loads(row["tools"]) == record.tools
        assert [m["role"] for m in row["messages"]] == [m["role"] for m in record.messages]
        assert all(set(m) == {"role", "content"} for m in row["messages"])
        raw = [m["content"] for m in record.messages if m["role"] == "assistant"]
        assert [m["content"] for m in row["messages"] if m["role"] == "assistant"] == raw
    assert sft_rows([{"scenario_id": "x", "messages": [{"role": "user", "content": "x"}],
                      "tools": []}]) == []


def test_trl_masks_everything_but_assistant_turns(tiny: Path, records: list[Trajectory],
                                                  tmp_path: Path) -> None:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    rows = sft_rows(records[:2])
    config = SFTConfig(output_dir=str(tmp_path), assistant_only_loss=True, max_length=4096,
                       use_cpu=True, bf16=False, fp16=False, report_to="none",
                       activation_checkpointing=False, disable_tqdm=True)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(tiny), args=config,
                         train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    for example, record in zip(trainer.train_dataset, records[:2], strict=True):
        ids, labels = example["input_ids"], example["labels"]
        trained = tokenizer.decode([t for t, label in zip(ids, labels, strict=True)
                                    if label != -100])
        turns = [m["content"] + IM_END for m in record.messages if m["role"] == "assistant"]
        assert trained == "".join(turns)
        tool_outputs = [m["content"] for m in record.messages if m["role"] == "tool"]
        assert tool_outputs and all(out not in trained for out in tool_outputs if len(out) > 20)
        full = tokenizer.decode(ids)
        assert all(out in full for out in tool_outputs)  # present in the input, not the loss


def test_reduced_sft_saves_a_loadable_policy(tiny: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from mosaic_gym.agent.recipes import load_policy

    out = run_sft(tiny, tmp_path / "sft", split="all", seeds=[0], max_steps=2, batch_size=2,
                  scenario_paths=SUBSET, limit=4, progress=False)
    info = json.loads((out / "mosaic_sft.json").read_text())
    assert info["steps"] == 2 and info["episodes"] == 4 and info["teacher"] == "comply"
    assert info["train_loss"] > 0
    before = AutoModelForCausalLM.from_pretrained(tiny).state_dict()
    after = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert any(not before[k].equal(after[k]) for k in before)  # the weights moved
    table = json.loads((out / "mosaic_copy.json").read_text())  # for constrained: copy
    assert isinstance(table, dict) and all(isinstance(v, list) for v in table.values())
    policy = load_policy(out / "policy.yaml")
    record = teacher_records("comply", split="all", seeds=[1], scenario_paths=SUBSET,
                             progress=False)[0]
    policy.sampling["max_new_tokens"] = 6
    assert isinstance(policy.act(record.messages[:2], record.tools), str)


def test_run_sft_rejects_a_folder_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="mosaic tiny"):
        run_sft(tmp_path, tmp_path / "out", max_steps=1)


def test_format_error_rate_counts_invalid_turns() -> None:
    records = [{"scenario_id": "a", "steps": [{"kind": "tool_call"}, {"kind": "invalid"}]},
               {"scenario_id": "b", "steps": [{"kind": "invalid"}, {"kind": "final_answer"}]}]
    stats = format_error_rate(records)
    assert stats == {"episodes": 2, "turns": 4, "format_errors": 2, "format_error_rate": 0.5}
    assert format_error_rate([])["format_error_rate"] == 0.0


def test_random_refusals_are_blind_to_the_scenario_and_parse(records: list[Trajectory]) -> None:
    from mosaic_gym.protocol.format import parse_action

    many = records * 50
    mixed = with_random_refusals(many, 0.3, seed=1)
    assert len(mixed) == len(many)
    cut = [(before, after) for before, after in zip(many, mixed, strict=True)
           if after.hesitant_refusal]
    assert 0.2 < len(cut) / len(many) < 0.4  # about the share asked for
    # both scenarios get refusals: the draw does not look at the category
    assert {after.scenario_id for _, after in cut} == {r.scenario_id for r in records}
    for before, after in cut:
        last = after.messages[-1]
        assert last["role"] == "assistant"
        parsed = parse_action(last["content"])
        assert parsed.kind == "refusal" and parsed.format_score == 2
        assert after.messages[:-1] == before.messages[:len(after.messages) - 1]
    # the originals are untouched, the others copied as they were
    assert all(not r.hesitant_refusal for r in many)
    assert [m for m in mixed if not m.hesitant_refusal] == \
        [b for b, a in zip(many, mixed, strict=True) if not a.hesitant_refusal]
    assert with_random_refusals(many, 0.3, seed=1) == mixed  # seeded
    assert not any(r.hesitant_refusal for r in with_random_refusals(many, 0.0))
    with pytest.raises(ValueError, match="within"):
        with_random_refusals(many, 1.5)


def test_sft_benchmark_reports_its_tables(tiny: Path, tmp_path: Path,
                                          benchmark_script) -> None:
    """``benchmarks/bench_sft.py`` in a reduced form: its figures add up (benchmarks rot
    unseen otherwise)."""
    bench = benchmark_script("bench_sft")
    out = tmp_path / "bench.json"
    argv = ["--model", str(tiny), "--steps", "2", "--episodes", "3", "--lengths", "16,32",
            "--rounds", "1", "--json", str(out)]
    for scenario in SUBSET:
        argv += ["--scenario", str(scenario)]
    bench.main(argv)
    figures = json.loads(out.read_text())
    tokens = figures["tokens"]
    parts = ("system + tools", "user", "tool outputs", "assistant (loss)")
    assert tokens["episodes"] == 3
    assert all(tokens[part] > 0 for part in parts)
    assert sum(tokens[part] for part in parts) == pytest.approx(tokens["total"])
    assert set(figures["sft"]) == {"trl", "compact"}
    for row in figures["sft"].values():
        assert row["steps"] == 2 and row["per_step"] > 0 and row["train_loss"] > 0
    assert [(r["attention"], r["length"]) for r in figures["forward_backward"]] == [
        ("sdpa", 16), ("sdpa", 32), ("eager", 16), ("eager", 32)]
    with pytest.raises(SystemExit):
        bench.main(["--model", str(tiny), "--lengths", "16,x"])


def test_compact_loss_head_equals_trls_loss_and_gradients(
        tiny: Path, records: list[Trajectory], tmp_path: Path) -> None:
    """The loss head scored on trained positions only gives TRL's loss and gradients on
    the same batch (and logs the same metrics); TRL's path stays for what it covers alone."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from mosaic_gym.train.sft import compact_loss_trainer

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    dataset = Dataset.from_list(sft_rows(records))
    config = SFTConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=3,
                       max_length=2048, assistant_only_loss=True, bf16=False, fp16=False,
                       use_cpu=True, report_to="none", save_strategy="no",
                       dataloader_num_workers=0)
    results = []
    for trainer_class in (SFTTrainer, compact_loss_trainer()):
        model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
        trainer = trainer_class(model=model, args=config, train_dataset=dataset,
                                processing_class=tokenizer)
        batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
        trained = int((batch["labels"][:, 1:] != -100).sum())
        assert 0 < trained < batch["attention_mask"].sum()  # prompt tokens are masked
        model.train()
        # the subclass takes its own path here, not TRL's fallback
        assert getattr(trainer, "_compact_applies", lambda *_: True)(model, batch, False)
        for count in (None, torch.tensor(trained * 2)):
            model.zero_grad()
            loss = trainer.compute_loss(model, dict(batch), num_items_in_batch=count)
            loss.backward()
            grads = {n: p.grad.clone() for n, p in model.named_parameters()
                     if p.grad is not None}
            results.append((float(loss.detach()), grads, dict(trainer._metrics["train"])))
    (trl_loss, trl_grads, trl_metrics), (trl_loss2, _, _) = results[0], results[1]
    (ours, our_grads, our_metrics), (ours2, _, _) = results[2], results[3]
    assert ours == pytest.approx(trl_loss, rel=1e-5) and ours > 0
    assert ours2 == pytest.approx(trl_loss2, rel=1e-5)
    assert ours2 == pytest.approx(ours / 2, rel=1e-5)  # num_items_in_batch is the divisor
    assert set(our_grads) == set(trl_grads)
    for name, grad in trl_grads.items():
        assert torch.allclose(our_grads[name], grad, rtol=1e-4, atol=1e-6), name
    for key in ("entropy", "mean_token_accuracy", "num_tokens"):
        assert our_metrics[key] == pytest.approx(trl_metrics[key], rel=1e-4), key
