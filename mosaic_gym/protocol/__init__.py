"""The MOSAIC action protocol: what an agent's turn looks like, and how it is read.

The environment owns the format; agents write it and rewards score it, so it lives here,
below all of them. A turn is a plan in ``<think>…</think>``, an optional safety check in
``<safety_thoughts>…</safety_thoughts>``, then one action: a tool call, a call of
:data:`REFUSAL_TOOL`, or a final answer.

* :func:`parse_action` reads a turn (never raises; a malformed turn is ``kind="invalid"``
  with an error message for the agent); :func:`render_action` writes one.
* :func:`system_prompt` is the system message every episode opens with.
* :func:`count_tokens_approx` and :func:`safety_token_share` measure turns without a
  tokenizer (the length penalty and the safety-token share use them).
"""

from __future__ import annotations

from mosaic_gym.protocol.format import (
    ParsedAction,
    ToolCall,
    count_tokens_approx,
    format_help,
    parse_action,
    render_action,
    render_tool_call,
    safety_token_share,
)
from mosaic_gym.protocol.names import REFUSAL_TOOL
from mosaic_gym.protocol.prompts import system_prompt

__all__ = [
    "REFUSAL_TOOL",
    "ParsedAction",
    "ToolCall",
    "count_tokens_approx",
    "format_help",
    "parse_action",
    "render_action",
    "render_tool_call",
    "safety_token_share",
    "system_prompt",
]
