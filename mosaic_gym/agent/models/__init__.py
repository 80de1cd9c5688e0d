"""Model policies that turn chat messages and tool schemas into the next assistant turn.

* :class:`~.transformers_policy.TransformersPolicy`: in-process transformers (CPU/GPU).
* :class:`~.vllm_policy.VLLMPolicy`: in-process ``vllm.LLM`` (optional dependency).
* :class:`~.openai_policy.OpenAIPolicy`: any OpenAI-compatible server (``vllm serve``).

All of them implement the :class:`~mosaic_gym.agent.baselines.Policy` protocol plus
``act_batch``. They are usually built from a recipe: :func:`mosaic_gym.agent.recipes.load_policy`.
Attributes are imported lazily, so importing this package loads no ML library.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "TransformersPolicy": "transformers_policy",
    "VLLMPolicy": "vllm_policy",
    "OpenAIPolicy": "openai_policy",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
