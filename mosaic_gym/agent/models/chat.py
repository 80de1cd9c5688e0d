"""Chat rendering shared by the in-process model backends (transformers, vLLM).

The environment's assistant messages hold the model's raw MOSAIC text in ``content`` and,
for bookkeeping, a structured ``tool_calls`` list. Backends render the raw text only (the
structured copy would show the call twice), with the model's chat template applied through
``tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True)``. The
same functions prepare SFT data, so what a model is trained on is what it sees when acting.

Nothing here imports torch; only a tokenizer object is needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mosaic_gym.core.seeding import derive_seed
from mosaic_gym.errors import ChatTemplateError


class TurnSeeds:
    """Per-turn sampling seeds shared by the model backends.

    A turn's seed depends on the recipe seed, the scenario, the episode seed, the step
    and the prompt, so episodes reset with the same seed do not share their draws.
    """

    _episode_seed: tuple[Any, int | None] | None = None
    _step = 0

    def reset(self, scenario: Any = None, seed: int | None = None) -> None:
        self._episode_seed = (getattr(scenario, "id", None), seed)
        self._step = 0

    def _next_turn_seed(self, base: int | None, prompt: str) -> int | None:
        """The seed of this turn (``None`` when sampling is unseeded); advances the step."""
        seed = None if base is None else derive_seed(base, self._episode_seed, self._step,
                                                      prompt)
        self._step += 1
        return seed


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):  # OpenAI content parts
        return "".join(str(part.get("text", "")) for part in content
                       if isinstance(part, Mapping))
    return str(content)


def chat_messages(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The environment's chat as plain ``{"role", "content"}`` messages (plus a tool's
    ``name`` and ``tool_call_id``); ``tool_calls`` are dropped, contents become strings."""
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role not in ("system", "user", "assistant", "tool"):
            raise ChatTemplateError(f"unknown chat role {role!r} (expected system, user, "
                                    "assistant or tool)")
        item: dict[str, Any] = {"role": role, "content": _text(message.get("content"))}
        if role == "tool":
            if message.get("name"):
                item["name"] = str(message["name"])
            if message.get("tool_call_id"):
                item["tool_call_id"] = str(message["tool_call_id"])
        out.append(item)
    return out


def load_template(template: str | Path | None) -> str | None:
    """A chat template given as ``None`` (the model's own), a ``.jinja`` file, or the name
    ``"mosaic-chatml"`` (the template of the tiny model, for models that lack one)."""
    if template is None:
        return None
    if str(template) == "mosaic-chatml":
        from mosaic_gym.agent.models.tiny_template import CHAT_TEMPLATE

        return CHAT_TEMPLATE
    path = Path(template)
    if path.suffix not in (".jinja", ".j2", ".txt"):
        raise ChatTemplateError(f"template {str(template)!r} is neither 'mosaic-chatml' nor "
                                "a .jinja file")
    if not path.is_file():
        raise ChatTemplateError(f"chat template file {path} not found")
    return path.read_text(encoding="utf-8")


def render_prompt(tokenizer: Any, messages: Iterable[Mapping[str, Any]],
                  tools: Sequence[Mapping[str, Any]] | None = None, *,
                  template: str | None = None, add_generation_prompt: bool = True,
                  chat_template_kwargs: Mapping[str, Any] | None = None) -> str:
    """The prompt text for the next assistant turn, rendered by the tokenizer's template
    (or ``template``, a Jinja string)."""
    if template is None and not getattr(tokenizer, "chat_template", None):
        raise ChatTemplateError(
            "the tokenizer has no chat template; set `template` in the policy recipe "
            "('mosaic-chatml' or a .jinja file)")
    try:
        return tokenizer.apply_chat_template(
            chat_messages(messages), tools=list(tools) if tools else None, tokenize=False,
            add_generation_prompt=add_generation_prompt, chat_template=template,
            **dict(chat_template_kwargs or {}))
    except ChatTemplateError:
        raise
    except Exception as exc:  # jinja raises many types; name the template problem
        raise ChatTemplateError(f"the chat template failed: {type(exc).__name__}: {exc}") from exc


def stop_token_ids(tokenizer: Any, generation_config: Any = None) -> list[int]:
    """Token ids that end a turn: the generation config's EOS ids, the tokenizer's EOS, and
    ``<|im_end|>`` / ``<|endoftext|>`` when the vocabulary has them."""
    ids: list[int] = []
    eos = getattr(generation_config, "eos_token_id", None)
    ids += eos if isinstance(eos, list) else [eos] if eos is not None else []
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    vocab = tokenizer.get_vocab()
    ids += [vocab[token] for token in ("<|im_end|>", "<|endoftext|>") if token in vocab]
    return list(dict.fromkeys(int(i) for i in ids))


def clean_completion(text: str, stops: Iterable[str] = ()) -> str:
    """Cut a generated turn at the first stop string (the stop itself is dropped)."""
    cut = len(text)
    for stop in stops:
        if stop:
            index = text.find(stop)
            if index != -1:
                cut = min(cut, index)
    return text[:cut]
