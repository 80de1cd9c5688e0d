"""Every use of TRL's private names goes through this module.

mosaic-gym drives TRL through documented extension points where they exist (``rollout_func``,
reward functions, ``DPOTrainer`` subclassing). Three things have no public door in TRL 1.16:

* ``GRPOTrainer._generate_single_turn``: generation of one turn for prompts given as token
  ids, through whatever backend the trainer is configured with (transformers, vLLM colocate
  or server). The multi-turn rollout needs exactly that.
* ``GRPOTrainer.vllm_generation.llm``: the colocated vLLM engine, read for the model's
  context length.
* ``DPOTrainer._prepare_dataset`` and ``_set_signature_columns_if_needed``: overridden so that
  multi-turn completions keep a per-token loss mask (tool outputs unscored).
* ``trl.trainer.utils._use_triton``: the switch of TRL's fused LM head between scoring the
  labelled positions only and scoring every position. :func:`compact_fused_head` turns the
  first on for the CPU, where TRL picks the second.

:func:`check_version` fails with a clear message on a TRL outside the tested range, so an
upgrade breaks here, at start-up, not in the middle of a training run;
``tests/train/test_compat.py`` checks each private name against the installed TRL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from mosaic_gym.errors import DependencyVersionError

TESTED = ((1, 16), (1, 16))
"""TRL (major, minor) versions these doors were written and tested against (inclusive)."""

PRIVATE_NAMES = {
    "trl.GRPOTrainer": ("_generate_single_turn",),
    "trl.DPOTrainer": ("_prepare_dataset", "_set_signature_columns_if_needed"),
}
"""The private attributes this module relies on, per class (checked by the tests)."""

PRIVATE_FUNCTIONS = {"trl.trainer.utils": ("_use_triton",)}
"""The private module-level functions this module relies on, per module (checked by the tests)."""


def trl_version() -> tuple[int, int]:
    import trl

    major, minor, *_ = (int(part) if part.isdigit() else 0
                        for part in trl.__version__.split(".")[:2] + ["0"])
    return major, minor


def check_version() -> None:
    """Raise :class:`DependencyVersionError` unless the installed TRL is a tested version."""
    import trl

    low, high = TESTED
    if not low <= trl_version() <= high:
        raise DependencyVersionError(
            f"mosaic-gym's trainers use private TRL internals tested with TRL "
            f"{low[0]}.{low[1]}-{high[0]}.{high[1]}; this is TRL {trl.__version__}. Install "
            f"'trl>={low[0]}.{low[1]},<{high[0]}.{high[1] + 1}' or update "
            "mosaic_gym/train/compat/trl.py")


def generate_single_turn(trainer: Any, *, constrained: bool = False,
                         copy: dict[str, list[str]] | None = None
                         ) -> Callable[..., tuple[list[Any], list[Any] | None]]:
    """``generate(prompt_ids, tools=None) -> (completion_ids, logprobs or None)`` for one
    turn each.

    With ``constrained`` (and ``tools``, one tool list per prompt), tool calls are decoded
    under :class:`~mosaic_gym.agent.models.constrained.ToolCallLogitsProcessor`, the same
    processor the evaluation policy uses. Only TRL's transformers generation path supports
    it (the model's ``generate`` is wrapped for the call); with vLLM it raises. ``copy`` is
    the copy table of ``constrained: copy`` decoding.
    """
    check_version()
    method = getattr(trainer, "_generate_single_turn", None)
    if method is None:
        raise DependencyVersionError("this TRL's GRPOTrainer has no _generate_single_turn; "
                                     "see mosaic_gym/train/compat/trl.py")
    if constrained and getattr(trainer, "use_vllm", False):
        raise DependencyVersionError("constrained decoding is implemented for the "
                                     "transformers generation path only, not vLLM")

    def generate(prompts: Sequence[Sequence[int]], tools: Sequence[Any] | None = None
                 ) -> tuple[list[Any], list[Any] | None]:
        if not constrained or tools is None:
            ids, logprobs = method([list(p) for p in prompts], None, {}, 1)
            return list(ids), None if logprobs is None else list(logprobs)
        from transformers import LogitsProcessorList

        from mosaic_gym.agent.models.constrained import ToolCallLogitsProcessor

        model = trainer.accelerator.unwrap_model(trainer.model)
        original = model.generate
        tokenizer = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)

        def constrained_generate(*args: Any, **kwargs: Any) -> Any:
            width = kwargs["input_ids"].shape[1]
            processors = LogitsProcessorList(kwargs.pop("logits_processor", None) or [])
            config = kwargs.get("generation_config")
            budget = (kwargs.get("max_new_tokens")
                      or getattr(config, "max_new_tokens", None)
                      or getattr(trainer, "max_completion_length", None))
            processors.append(ToolCallLogitsProcessor(tokenizer, list(tools), width,
                                                      budget=budget, copy=copy))
            return original(*args, logits_processor=processors, **kwargs)

        model.generate = constrained_generate
        try:
            ids, logprobs = method([list(p) for p in prompts], None, {}, 1)
        finally:
            del model.generate  # the instance attribute; the class method is back
        return list(ids), None if logprobs is None else list(logprobs)

    return generate


def colocated_vllm_max_len(trainer: Any) -> int:
    """The context length of a GRPO trainer's colocated vLLM engine."""
    check_version()
    return int(trainer.vllm_generation.llm.llm_engine.model_config.max_model_len)


def masked_preference_collator() -> type:
    """``DataCollatorForPreference`` whose completion mask is the rows' loss mask."""
    check_version()
    from trl.trainer.dpo_trainer import DataCollatorForPreference
    from trl.trainer.utils import pad

    @dataclass
    class MaskedPreferenceCollator(DataCollatorForPreference):
        """``DataCollatorForPreference`` whose completion mask is the rows' loss mask."""

        def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
            import torch

            output = super().torch_call(examples)
            masks = ([[0] * len(e["prompt_ids"]) + list(e["chosen_loss_mask"]) for e in examples]
                     + [[0] * len(e["prompt_ids"]) + list(e["rejected_loss_mask"])
                        for e in examples])
            if self.max_length is not None:
                keep = (slice(None, self.max_length) if self.truncation_mode == "keep_start"
                        else slice(-self.max_length, None))
                masks = [m[keep] for m in masks]
            padded = pad([torch.tensor(m, dtype=torch.long) for m in masks], padding_value=0,
                         padding_side="right", pad_to_multiple_of=self.pad_to_multiple_of)
            if padded.shape != output["completion_mask"].shape:
                raise RuntimeError("loss mask and completion mask disagree in shape")
            output["completion_mask"] = padded
            return output

    return MaskedPreferenceCollator


def masked_dpo_trainer(tokenize_row: Callable[..., Any],
                       loss_mask_columns: Sequence[str]) -> type:
    """``DPOTrainer`` whose dataset preparation tokenizes with ``tokenize_row`` (rows flagged
    ``skip`` are dropped) and keeps the ``loss_mask_columns``."""
    check_version()
    from trl import DPOTrainer

    class MaskedDPOTrainer(DPOTrainer):
        """``DPOTrainer`` for multi-turn completions: only the agent's tokens are scored."""

        def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any,
                             dataset_name: str) -> Any:
            tokenizer = getattr(processing_class, "tokenizer", processing_class)
            columns = list(dataset.column_names)
            dataset = dataset.map(tokenize_row, fn_kwargs={"tokenizer": tokenizer},
                                  remove_columns=columns, desc=f"Tokenizing {dataset_name}")
            before = len(dataset)
            dataset = dataset.filter(lambda row: not row["skip"]).remove_columns("skip")
            if len(dataset) < before:
                print(f"dpo: dropped {before - len(dataset)} of {before} pairs the chat "
                      "template cannot mask turn by turn")
            if args.max_length is not None and args.truncation_mode == "keep_start":
                dataset = dataset.filter(lambda row: len(row["prompt_ids"]) < args.max_length)
            if len(dataset) == 0:
                raise ValueError(f"no usable preference pairs left in {dataset_name}")
            return dataset

        def _set_signature_columns_if_needed(self) -> None:
            super()._set_signature_columns_if_needed()
            columns: list[str] = list(self._signature_columns or [])
            self._signature_columns = [*columns, *loss_mask_columns]  # type: ignore[assignment]

    return MaskedDPOTrainer


@contextmanager
def compact_fused_head(enabled: bool = True) -> Iterator[bool]:
    """Within the block, TRL's fused LM head scores the labelled positions only, on the CPU too.

    ``add_fused_lm_head`` (the log-probabilities of GRPO, of DPO and of their reference
    models) projects through the LM head in tiles. On a Triton device it projects only the
    positions whose label is kept; elsewhere it projects every position, padding and prompt
    included, and masks afterwards, because on accelerators that compile each shape (Neuron)
    a varying number of positions would recompile on every batch. The CPU compiles nothing,
    so there the compact path is the same computation on fewer rows: the kept positions get
    the same log-probabilities, entropies and gradients (``tests/train/test_compat.py``), the
    others the zeros both paths give them. Only that choice changes; the tile kernels stay
    the torch ones. Yields whether the switch is in place (``False`` when ``enabled`` is
    false); the previous switch is restored on exit, also after an error.
    """
    if not enabled:
        yield False
        return
    check_version()
    from trl.trainer import utils

    original = getattr(utils, "_use_triton", None)
    if not callable(original):
        raise DependencyVersionError("this TRL has no trl.trainer.utils._use_triton; "
                                     "see mosaic_gym/train/compat/trl.py")

    def compact_here(device: Any) -> bool:
        return bool(original(device)) or getattr(device, "type", None) == "cpu"

    utils._use_triton = compact_here
    try:
        yield True
    finally:
        utils._use_triton = original
