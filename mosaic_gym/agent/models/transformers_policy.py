"""In-process transformers policy: batched, seedable sampling from a causal LM.

Whatever the model writes is returned as the action text; the environment's parser turns
malformed text into a counted format error. A prompt longer than the model's context (with
room for ``max_new_tokens``) yields an empty turn, which the environment also counts as a
format error, instead of an exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mosaic_gym.agent.models.chat import (
    TurnSeeds,
    clean_completion,
    load_template,
    render_prompt,
    stop_token_ids,
)
from mosaic_gym.core.seeding import derive_seed
from mosaic_gym.errors import ModelLoadError

DEFAULT_SAMPLING: dict[str, Any] = {"temperature": 0.7, "top_p": 1.0, "top_k": None,
                                    "max_new_tokens": 512, "seed": 0, "stop": []}

Chat = tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]]



def check_sampling(sampling: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults filled in; unknown keys and out-of-range values raise ``ValueError``."""
    merged = dict(DEFAULT_SAMPLING)
    unknown = set(sampling or {}) - set(DEFAULT_SAMPLING)
    if unknown:
        raise ValueError(f"unknown sampling key(s) {sorted(unknown)}; expected "
                         f"{', '.join(DEFAULT_SAMPLING)}")
    merged.update({k: v for k, v in (sampling or {}).items() if v is not None or k == "seed"})
    if merged["temperature"] < 0 or not 0 < merged["top_p"] <= 1:
        raise ValueError("sampling needs temperature >= 0 and 0 < top_p <= 1")
    if int(merged["max_new_tokens"]) < 1:
        raise ValueError("sampling.max_new_tokens must be at least 1")
    merged["stop"] = list(merged["stop"] or [])
    return merged


def load_model_and_tokenizer(model: str | Path, *, dtype: str = "auto",
                             device: str = "cpu") -> tuple[Any, Any]:
    """``AutoModelForCausalLM`` and ``AutoTokenizer`` from a folder (or a cached hub id)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model))
        lm = AutoModelForCausalLM.from_pretrained(str(model), dtype=dtype)
    except (OSError, ValueError) as exc:
        hint = (" (build the tiny one with `mosaic tiny` then `mosaic sft`)"
                if "tiny" in str(model) else "")
        raise ModelLoadError(f"cannot load model {str(model)!r}{hint}: {exc}") from exc
    return lm.to(device).eval(), tokenizer


class TransformersPolicy(TurnSeeds):
    """A policy generating with ``model.generate`` (CPU or GPU).

    Args:
        model: a model folder / hub id, or a loaded ``PreTrainedModel``.
        tokenizer: needed when ``model`` is an object; loaded with the model otherwise.
        sampling: ``temperature`` (0 = greedy), ``top_p``, ``top_k``, ``max_new_tokens``,
            ``seed`` (None = unseeded), ``stop`` (extra stop strings).
        template: ``None`` (the tokenizer's), ``"mosaic-chatml"`` or a ``.jinja`` file.
        chat_template_kwargs: passed to the template (e.g. ``enable_thinking``).
        batch_size: prompts per ``generate`` call in :meth:`act_batch`.
        constrained: decode tool calls under the grammar of the episode's tools (offered
            names, their argument names, valid JSON; see
            :mod:`mosaic_gym.agent.models.constrained`) with ``True``; ``"copy"`` also
            keeps the values of the parameters the teacher copies (the model folder's
            ``mosaic_copy.json``) verbatim substrings of the prompt; ``"span"`` keeps them
            whole spans, word-aligned at both ends, of the prompt's system, user and tool
            turns (never of the model's own turns). Off by default.

    Seeding: with a ``seed``, :meth:`act` samples under a seed derived from (seed, the
    scenario id and seed given to :meth:`reset`, the step, the prompt text), so an episode
    replays identically and different episodes draw independent samples; each
    :meth:`act_batch` call uses (seed, "batch", call number).
    """

    def __init__(self, model: Any, tokenizer: Any = None, *,
                 sampling: Mapping[str, Any] | None = None, template: str | Path | None = None,
                 chat_template_kwargs: Mapping[str, Any] | None = None, device: str = "cpu",
                 dtype: str = "auto", batch_size: int = 8, name: str | None = None,
                 constrained: bool | str = False) -> None:
        self.sampling = check_sampling(sampling)
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if isinstance(model, (str, Path)):
            self.name = name or f"transformers:{model}"
            self.model, loaded = load_model_and_tokenizer(model, dtype=dtype, device=device)
            tokenizer = tokenizer or loaded
        else:
            if tokenizer is None:
                raise ValueError("pass the tokenizer along with a loaded model")
            self.name = name or f"transformers:{type(model).__name__}"
            self.model = model
        self.tokenizer = tokenizer
        self.template = load_template(template)
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.batch_size = batch_size
        self.device = next(self.model.parameters()).device
        self.stop_ids = stop_token_ids(tokenizer, getattr(self.model, "generation_config", None))
        self.pad_id = (tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                       else self.stop_ids[0])
        self.max_context = int(getattr(self.model.config, "max_position_embeddings", 0) or 0)
        self.truncated_prompts = 0
        self._batches = 0
        from mosaic_gym.agent.models.constrained import decoding_mode

        self.constrained, self.copy = decoding_mode(constrained, model)

    # -- Policy protocol -------------------------------------------------------------
    def act(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]],
            info: Mapping[str, Any] | None = None) -> str:
        """The next assistant turn, as raw text."""
        prompt = self.prompt(messages, tools)
        return self._generate([prompt], self._next_turn_seed(self.sampling["seed"], prompt),
                              [tools])[0]

    def act_batch(self, batch: Sequence[Chat]) -> list[str]:
        """One turn for each ``(messages, tools)``, generated ``batch_size`` at a time."""
        seed = self.sampling["seed"]
        turn_seed = None if seed is None else derive_seed(seed, "batch", self._batches)
        self._batches += 1
        return self._generate([self.prompt(m, t) for m, t in batch], turn_seed,
                              [t for _m, t in batch])

    # -- generation ----------------------------------------------------------------------
    def prompt(self, messages: Sequence[Mapping[str, Any]],
               tools: Sequence[Mapping[str, Any]]) -> str:
        """The rendered prompt for the next turn (chat template + generation prompt)."""
        return render_prompt(self.tokenizer, messages, tools, template=self.template,
                             chat_template_kwargs=self.chat_template_kwargs)

    def _generate(self, prompts: list[str], seed: int | None,
                  tools: Sequence[Sequence[Mapping[str, Any]]] | None = None) -> list[str]:
        import torch

        if not prompts:
            return []
        budget = int(self.sampling["max_new_tokens"])
        encoded = [self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
                   for prompt in prompts]
        results = [""] * len(prompts)
        fits = [i for i, ids in enumerate(encoded)
                if not self.max_context or len(ids) + 1 <= self.max_context]
        self.truncated_prompts += len(prompts) - len(fits)
        fits.sort(key=lambda i: len(encoded[i]))  # similar lengths share a batch
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            for start in range(0, len(fits), self.batch_size):
                chunk = fits[start:start + self.batch_size]
                texts = self._generate_chunk([encoded[i] for i in chunk], budget,
                                             [tools[i] for i in chunk] if tools else None)
                for i, text in zip(chunk, texts, strict=True):
                    results[i] = text
        return results

    def _generate_chunk(self, prompts: list[list[int]], budget: int,
                        tools: Sequence[Sequence[Mapping[str, Any]]] | None = None
                        ) -> list[str]:
        import torch

        width = max(map(len, prompts))
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):  # left padding
            ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
            mask[row, width - len(prompt):] = 1
        if self.max_context:
            budget = max(1, min(budget, self.max_context - width))
        temperature = float(self.sampling["temperature"])
        kwargs: dict[str, Any] = {"max_new_tokens": budget, "eos_token_id": self.stop_ids,
                                  "pad_token_id": self.pad_id}
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature,
                          top_p=float(self.sampling["top_p"]),
                          top_k=int(self.sampling["top_k"] or 0))
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if self.constrained and tools is not None:
            from transformers import LogitsProcessorList

            from mosaic_gym.agent.models.constrained import ToolCallLogitsProcessor

            kwargs["logits_processor"] = LogitsProcessorList(
                [ToolCallLogitsProcessor(self.tokenizer, tools, width, budget=budget,
                                         copy=self.copy)])
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids.to(self.device),
                                      attention_mask=mask.to(self.device), **kwargs)
        texts = []
        stops = set(self.stop_ids)
        for row in out[:, width:].tolist():
            end = next((k for k, token in enumerate(row) if token in stops), len(row))
            text = self.tokenizer.decode(row[:end], skip_special_tokens=False)
            texts.append(clean_completion(text, self.sampling["stop"]))
        return texts
