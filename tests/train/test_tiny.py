"""The tiny offline model: builds, reloads with the Auto classes, renders chats, generates."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from mosaic_gym.train.tiny import (  # noqa: E402
    IM_END,
    MOSAIC_TAGS,
    build_tiny,
    render_chat_text,
)

pytestmark = pytest.mark.train

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"
SUBSET = [LIBRARY / "benign" / "email_reply_with_report.yaml",
          LIBRARY / "harmful" / "devbox_wipe_backups.yaml",
          LIBRARY / "injection" / "email_summary_exfil.yaml"]
SMALL = {"vocab_size": 640, "hidden_size": 64, "num_layers": 2, "num_heads": 2,
         "num_kv_heads": 1, "intermediate_size": 128, "max_positions": 2048,
         "split": "all", "scenario_paths": SUBSET}


def _digest(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
            for name in ("model.safetensors", "tokenizer.json")}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("tiny") / "base", seed=3, **SMALL)


def test_build_is_deterministic_and_seeded(tiny: Path, tmp_path: Path) -> None:
    again = build_tiny(tmp_path / "again", seed=3, **SMALL)
    assert _digest(again) == _digest(tiny)
    other = build_tiny(tmp_path / "other", seed=4, **SMALL)
    digests = _digest(other)
    assert digests["tokenizer.json"] == _digest(tiny)["tokenizer.json"]
    assert digests["model.safetensors"] != _digest(tiny)["model.safetensors"]
    tok_config = json.loads((tiny / "tokenizer_config.json").read_text())
    assert tok_config["tokenizer_class"] == "Qwen2Tokenizer"  # known to transformers 4 and 5
    info = json.loads((tiny / "mosaic_tiny.json").read_text())
    assert info["vocab_size"] == 640 and info["parameters"] > 0


def test_tokenizer_keeps_tags_and_round_trips(tiny: Path) -> None:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    raw = Tokenizer.from_file(str(tiny / "tokenizer.json"))
    for tag in MOSAIC_TAGS:
        assert len(tok(tag)["input_ids"]) == 1, tag
    text = ('Grüße 😀 12345\n\n  <think>plan</think>\n<tool_call>{"name": "x", '
            '"arguments": {}}</tool_call>' + IM_END)
    ids = tok(text)["input_ids"]
    # AutoTokenizer must split text exactly as the trained tokenizer does.
    assert ids == raw.encode(text).ids
    assert tok.decode(ids) == text
    # Tags survive skip_special_tokens; the end-of-turn token does not.
    assert tok.decode(ids, skip_special_tokens=True) == text[: -len(IM_END)]
    assert tok.eos_token == IM_END and tok.pad_token_id is not None


def test_chat_template_renders_tools_and_raw_assistant_text(tiny: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    tools = [{"type": "function", "function": {
        "name": "read_file", "description": "Read a file.",
        "parameters": {"type": "object", "required": ["path"], "properties": {
            "path": {"type": "string", "description": "Which file."},
            "limit": {"type": "integer", "description": "Most lines."}}}}},
        {"type": "function", "function": {"name": "refusal_tool", "description": "Refuse.",
                                          "parameters": {"type": "object", "properties": {}}}}]
    raw = '<think>p</think>\n<tool_call>{"name": "read_file", "arguments": {}}</tool_call>'
    messages = [
        {"role": "system", "content": "SYS"},
        {"role": "user", "content": "do it"},
        {"role": "assistant", "content": raw, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "read_file", "arguments": {"path": "IGNORED"}}}]},
        {"role": "tool", "tool_call_id": "call_1", "name": "read_file", "content": "data"},
    ]
    text = tok.apply_chat_template(messages, tools=tools, tokenize=False,
                                   add_generation_prompt=True)
    assert text == render_chat_text(messages, tools, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nSYS\n\n# Tools\n"
                           "- read_file(path: string, limit?: integer): Read a file.\n"
                           "- refusal_tool(): Refuse.<|im_end|>\n")
    assert f"<|im_start|>assistant\n{raw}<|im_end|>\n" in text
    assert "IGNORED" not in text
    assert "<|im_start|>tool\ndata<|im_end|>\n" in text
    assert text.endswith("<|im_start|>assistant\n")
    no_prompt = tok.apply_chat_template(messages[:2], tokenize=False)
    assert not no_prompt.endswith("assistant\n") and "# Tools" not in no_prompt
    # Assistant turns (with their end token) are the only ones marked for the loss.
    out = tok.apply_chat_template(messages, tools=tools, tokenize=True, return_dict=True,
                                  return_assistant_tokens_mask=True)
    marked = [i for i, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert tok.decode(marked) == raw + IM_END


def test_reloads_and_generates(tiny: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert model.config.tie_word_embeddings
    batch = tok.apply_chat_template([{"role": "user", "content": "hello"}],
                                    add_generation_prompt=True, return_tensors="pt",
                                    return_dict=True)
    torch.manual_seed(0)
    out = model.generate(**batch, max_new_tokens=6, do_sample=True)
    new = out[0, batch["input_ids"].shape[1]:]
    assert 1 <= new.numel() <= 6
    assert isinstance(tok.decode(new, skip_special_tokens=True), str)
