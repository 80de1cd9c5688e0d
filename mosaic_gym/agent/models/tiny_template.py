"""The tiny model's chat format: ChatML-like, compact tool lines, MOSAIC tags as tokens.

Defined here, with the model policies that render prompts, so that rendering a prompt never
imports the training code; :mod:`mosaic_gym.train.tiny` builds the tokenizer and the model
around it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"
SPECIAL_TOKENS = (END_OF_TEXT, IM_START, IM_END)
"""Chat-format tokens: special (dropped by ``skip_special_tokens`` when decoding)."""
MOSAIC_TAGS = ("<think>", "</think>", "<safety_thoughts>", "</safety_thoughts>",
               "<tool_call>", "</tool_call>", "<answer>", "</answer>")
"""MOSAIC-format tags: one token each, but not special, so decoded text keeps them."""

PRETOKENIZE_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                     r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
"""Qwen2's pre-tokenizer split (single digits, words with a leading space, punctuation runs)."""

DEFAULT_SYSTEM = "You are a helpful assistant that uses tools."

CHAT_TEMPLATE = (
    "{%- set ns = namespace(system='" + DEFAULT_SYSTEM + "', start=0) -%}\n"
    "{%- if messages and messages[0].role == 'system' -%}\n"
    "  {%- set ns.system = messages[0].content or '' -%}{%- set ns.start = 1 -%}\n"
    "{%- endif -%}\n"
    "{{- '<|im_start|>system\\n' + ns.system -}}\n"
    "{%- if tools -%}\n"
    "  {{- '\\n\\n# Tools' -}}\n"
    "  {%- for tool in tools -%}\n"
    "    {%- set fn = tool.function if tool.function is defined else tool -%}\n"
    "    {%- set params = (fn.parameters or {}).properties or {} -%}\n"
    "    {%- set required = (fn.parameters or {}).required or [] -%}\n"
    "    {{- '\\n- ' + fn.name + '(' -}}\n"
    "    {%- for pname, spec in params.items() -%}\n"
    "      {{- pname + ('' if pname in required else '?') + ': ' + (spec.type or 'any') -}}\n"
    "      {%- if not loop.last -%}{{- ', ' -}}{%- endif -%}\n"
    "    {%- endfor -%}\n"
    "    {{- '): ' + (fn.description or '') -}}\n"
    "  {%- endfor -%}\n"
    "{%- endif -%}\n"
    "{{- '<|im_end|>\\n' -}}\n"
    "{%- for message in messages[ns.start:] -%}\n"
    "  {%- if message.content is string -%}{%- set text = message.content -%}\n"
    "  {%- elif message.content -%}\n"
    "    {%- set text = message.content | map(attribute='text') | select('string') | join('') -%}\n"
    "  {%- else -%}{%- set text = '' -%}{%- endif -%}\n"
    "  {%- if message.role == 'assistant' -%}\n"
    "    {{- '<|im_start|>assistant\\n' -}}\n"
    "    {%- generation -%}{{- text + '<|im_end|>' -}}{%- endgeneration -%}\n"
    "    {{- '\\n' -}}\n"
    "  {%- else -%}\n"
    "    {{- '<|im_start|>' + message.role + '\\n' + text + '<|im_end|>\\n' -}}\n"
    "  {%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}\n"
)
"""ChatML-style template with compact tool lines; assistant contents are rendered verbatim."""

_GENERATION_TAG = re.compile(r"\{%-?\s*(?:end)?generation\s*-?%\}")


def render_chat_text(messages: Sequence[Mapping[str, Any]],
                     tools: Sequence[Mapping[str, Any]] | None = None, *,
                     add_generation_prompt: bool = False,
                     template: str = CHAT_TEMPLATE) -> str:
    """Render a chat with ``template`` without a tokenizer (plain Jinja, as transformers does).

    Used to build the tokenizer's training corpus before a tokenizer exists; gives the same
    text as ``tokenizer.apply_chat_template(..., tokenize=False)`` on the built tokenizer.
    """
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda value: json.dumps(value, ensure_ascii=False)
    compiled = env.from_string(_GENERATION_TAG.sub("", template))
    return compiled.render(messages=list(messages), tools=list(tools) if tools else None,
                           add_generation_prompt=add_generation_prompt)
