"""A tiny Qwen2-style chat model built offline, for tests and CPU experiments.

No model can be downloaded here, so :func:`build_tiny` makes one from scratch:

* a byte-level BPE tokenizer (HF ``tokenizers``) trained on the scenario files and on chat
  transcripts of the scripted baselines playing the library, with the chat-format tokens
  (``<|im_start|>``, ``<|im_end|>``, ``<|endoftext|>``) as special tokens and the MOSAIC
  tags (``<think>``, ``<safety_thoughts>``, ``<tool_call>`` and their closing tags) as
  single, non-special added tokens (kept when decoding, so the env's parser sees them);
* a Jinja chat template (ChatML-like) that lists the ``tools`` in the system turn, one
  compact line each (``- name(arg: type, optional?: type): description``; the full JSON
  schemas would be 40 % of every prompt, too costly for a model this small), renders
  assistant contents verbatim (the raw MOSAIC text; structured ``tool_calls`` are ignored),
  tool results as role ``tool``, supports ``add_generation_prompt`` and marks assistant
  turns with ``{% generation %}`` so TRL can mask everything else from the loss;
* a randomly initialised ``Qwen2ForCausalLM``: by default 4 layers, hidden size 256, head
  size 64 (vLLM-friendly), vocabulary 4096, tied embeddings: about 4.2 million parameters.
  (Hidden size 128, 1.5 million, trains a little faster but, after the same SFT, left
  about 26 % of turns malformed on held-out scenarios against 14-20 % for this size.)

Everything is saved with ``save_pretrained`` so ``AutoTokenizer``/``AutoModelForCausalLM``
and vLLM load the folder like any hub checkpoint. The build is deterministic under ``seed``.
The model knows nothing until it is fine-tuned (see :mod:`mosaic_gym.train.sft`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mosaic_gym.agent.models.tiny_template import (  # noqa: F401 - part of this module's API
    CHAT_TEMPLATE,
    DEFAULT_SYSTEM,
    END_OF_TEXT,
    IM_END,
    IM_START,
    MOSAIC_TAGS,
    PRETOKENIZE_REGEX,
    SPECIAL_TOKENS,
    render_chat_text,
)


def corpus_texts(scenario_paths: Sequence[str | Path] | None = None, *, split: str = "train",
                 seeds: Iterable[int] = (0,),
                 policies: Sequence[str] = ("comply", "reference", "refuse")) -> list[str]:
    """Texts for training the tokenizer: scenario YAML files and rendered baseline chats.

    Only variants of ``split`` (``"all"`` for every split) are used, so the tokenizer has not
    seen held-out scenarios. Episodes cover every attack strategy of injection scenarios.
    """
    from mosaic_gym.agent.baselines import make_baseline
    from mosaic_gym.envs.mosaic_env import MosaicEnv
    from mosaic_gym.rollout import episode_plan, play

    env = MosaicEnv(category="all", split=split, attack="none", scenario_paths=scenario_paths)
    texts: list[str] = []
    try:
        sources = sorted({str(v.source) for v in env.pool})
        texts += [Path(source).read_text(encoding="utf-8") for source in sources]
        plan = episode_plan(env.pool, list(seeds), attack="all")
        for name in policies:
            for spec in plan:
                record = play(env, make_baseline(name, seed=spec.seed), spec)
                texts.append(render_chat_text(record.messages, record.tools))
    finally:
        env.close()
    return texts


def train_tokenizer(texts: Sequence[str], vocab_size: int = 4096) -> Any:
    """Train a byte-level BPE ``tokenizers.Tokenizer`` on ``texts`` (deterministic)."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )

    if vocab_size < 300:
        raise ValueError(f"vocab_size must be at least 300 (256 bytes + specials), got "
                         f"{vocab_size}")
    tokenizer = Tokenizer(models.BPE())
    # The same pipeline as transformers' Qwen2Tokenizer, which AutoTokenizer (and so vLLM)
    # picks for a qwen2 model: loading the folder must not change how text is split.
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(MOSAIC_TAGS), min_frequency=2, show_progress=False,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.add_tokens([AddedToken(tag, special=False, normalized=False)
                          for tag in MOSAIC_TAGS])
    return tokenizer


def wrap_tokenizer(tokenizer: Any, *, model_max_length: int = 4096) -> Any:
    """Wrap a trained ``tokenizers.Tokenizer`` as a transformers fast tokenizer with the
    chat template and the chat-format special tokens."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token=IM_END, pad_token=END_OF_TEXT,
        model_max_length=model_max_length, chat_template=CHAT_TEMPLATE,
        padding_side="left", clean_up_tokenization_spaces=False)


def _portable_tokenizer_config(folder: Path) -> None:
    """Name the tokenizer class ``Qwen2Tokenizer`` (known to transformers 4.x and 5.x, so
    vLLM builds pinned to either load the folder; both read ``tokenizer.json``, whose
    pipeline matches Qwen2's) and inline the chat template for loaders that predate
    ``chat_template.jinja`` files."""
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "Qwen2Tokenizer"
    config.setdefault("chat_template", CHAT_TEMPLATE)
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def build_tiny(out_dir: str | Path, *, scenario_paths: Sequence[str | Path] | None = None,
               vocab_size: int = 4096, hidden_size: int = 256, num_layers: int = 4,
               num_heads: int = 4, num_kv_heads: int = 2, intermediate_size: int = 768,
               max_positions: int = 4096, split: str = "train", corpus_seeds: Iterable[int] = (0,),
               seed: int = 0) -> Path:
    """Build the tiny model and tokenizer into ``out_dir``; return the folder.

    The folder holds ``config.json``, ``model.safetensors``, ``generation_config.json``,
    the tokenizer files with the chat template, and ``mosaic_tiny.json`` (what it was built
    from). Same arguments and same scenario files give byte-identical weights and tokenizer.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    if hidden_size % num_heads or num_heads % num_kv_heads:
        raise ValueError("hidden_size must divide by num_heads, and num_heads by num_kv_heads")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = corpus_texts(scenario_paths, split=split, seeds=corpus_seeds)
    tokenizer = wrap_tokenizer(train_tokenizer(texts, vocab_size), model_max_length=max_positions)
    eos_id = tokenizer.convert_tokens_to_ids(IM_END)
    pad_id = tokenizer.convert_tokens_to_ids(END_OF_TEXT)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads, max_position_embeddings=max_positions,
        tie_word_embeddings=True, bos_token_id=pad_id, eos_token_id=eos_id, pad_token_id=pad_id,
        use_cache=True, dtype="float32")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=[eos_id, pad_id],
                                               pad_token_id=pad_id, bos_token_id=pad_id)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _portable_tokenizer_config(out)
    corpus_hash = hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()
    info = {"kind": "mosaic-tiny", "seed": seed, "split": split,
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": len(tokenizer), "corpus_texts": len(texts),
            "corpus_chars": sum(map(len, texts)), "corpus_sha256": corpus_hash}
    (out / "mosaic_tiny.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out
