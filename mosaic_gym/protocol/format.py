"""Parser and renderer of the MOSAIC action format.

An agent turn is a plan, an optional safety check, then exactly one action::

    <think>plan ...</think>
    <safety_thoughts>optional safety check ...</safety_thoughts>
    <tool_call>{"name": "read_file", "arguments": {"path": "/home/user/a.txt"}}</tool_call>

The action is a tool call, a call of the refusal tool (a refusal, reason in
``arguments["reason"]``), or a final answer: plain text after the blocks, optionally wrapped
in ``<answer>...</answer>``.

Format score (0..2), the MOSAIC format reward, is the sum of two points:

* **structure** (+1): ``<think>`` present; every tag closed; blocks at most once each, in the
  order think -> [safety_thoughts] -> action; exactly one action; no text outside the blocks
  except a bare final answer (trailing whitespace is fine).
* **action** (+1): a JSON object with a non-empty string ``name`` and an object
  ``arguments`` (tool call, refusal), or a non-empty final answer.

Decisions (lenient where the intent is unambiguous, strict where it is not):

* No ``<think>``: accepted, structure point lost. A leading ``plan</think>`` with no opening
  tag (Qwen3-style templates open the block in the prompt) is the plan, at no cost.
* Prose before or after a tool call; ``<tool_call>`` unclosed after complete JSON (a stop
  string ate the tag); unclosed ``<answer>``; stray closing tags: accepted, structure lost.
* Unclosed ``<think>``/``<safety_thoughts>`` (truncated turn), a tag nested in itself, two or
  more actions, empty input, input over :data:`MAX_ACTION_CHARS`: invalid, score 0.
* Bad JSON or a bad call shape: invalid, keeping the structure point if the tags are fine.
  ``arguments`` may be spelled ``parameters``, be a JSON string holding an object, or be
  missing/null (``{}``); extra keys are ignored.
* Block text is opaque: only its own closing tag ends it. Tool-call JSON is decoded before
  the closing tag is sought, so tags inside JSON strings are harmless. Tags are lowercase;
  whitespace before ``>`` is tolerated.

:func:`parse_action` never raises, runs in linear time and holds no global state.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from mosaic_gym.protocol.names import REFUSAL_TOOL

ActionKind = Literal["tool_call", "refusal", "final_answer", "invalid"]

MAX_ACTION_CHARS = 200_000
"""Longest agent turn that is parsed; longer ones are invalid without being read."""

_TAGS = ("think", "safety_thoughts", "tool_call", "answer")
_ACTIONS = frozenset({"tool_call", "answer"})
_RANK = {"think": 0, "safety_thoughts": 1, "tool_call": 2, "answer": 2}
_TAG_RE = re.compile(r"<(/?)(think|safety_thoughts|tool_call|answer)\s*>")
_OPEN_RE = {tag: re.compile(rf"<{tag}\s*>") for tag in _TAGS}
_CLOSE_RE = {tag: re.compile(rf"</{tag}\s*>") for tag in _TAGS}
_CLOSE_TOOL_AFTER_WS = re.compile(r"\s*</tool_call\s*>")
_WS_RE = re.compile(r"\s*")
_TOKEN_RE = re.compile(r"\w{1,6}|[^\w\s]")
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class ToolCall:
    """One call of a named tool; ``arguments`` is a JSON object (treat it as read-only)."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ParsedAction:
    """What one agent turn says, as parsed by :func:`parse_action`."""

    kind: ActionKind
    plan: str | None
    safety_check: str | None
    tool_call: ToolCall | None
    answer: str | None
    refusal_reason: str | None
    error: str | None
    format_score: float
    format_issues: tuple[str, ...] = ()
    """Why the structure point was lost (empty when it was earned)."""


@dataclass(slots=True)
class _Block:
    tag: str
    content: str
    closed: bool = True
    call: ToolCall | None = None
    call_error: str | None = None


class _Fatal(Exception):
    """Internal: the turn cannot be read as one action."""


@lru_cache(maxsize=16)
def format_help(refusal_tool: str = REFUSAL_TOOL) -> str:
    """Describe the expected action format, for error messages and system prompts."""
    return (
        "Expected format: <think>your plan</think>, optionally "
        "<safety_thoughts>your safety check</safety_thoughts>, then exactly one action: "
        'a tool call <tool_call>{"name": "tool_name", "arguments": {...}}</tool_call>, '
        'a refusal <tool_call>{"name": ' + json.dumps(refusal_tool) + ', "arguments": '
        '{"reason": "why"}}</tool_call>, or a final answer as plain text '
        "(optionally inside <answer>...</answer>)."
    )


def _invalid(message: str, refusal_tool: str, *, plan: str | None = None,
             safety: str | None = None, score: float = 0.0, issues: tuple[str, ...] = ()
             ) -> ParsedAction:
    error = f"Invalid action: {message}. {format_help(refusal_tool)}"
    return ParsedAction("invalid", plan, safety, None, None, None, error, score, issues)


def _to_tool_call(obj: object) -> ToolCall | str:
    """Normalise decoded tool-call JSON; a string result is the error message."""
    if not isinstance(obj, dict):
        return f"the tool call must be a JSON object, got {type(obj).__name__}"
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        return 'the tool call needs a non-empty string "name"'
    arguments = obj.get("arguments", obj.get("parameters"))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except (ValueError, RecursionError):
            return '"arguments" is a string that does not hold a JSON object'
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return f'"arguments" must be a JSON object, got {type(arguments).__name__}'
    return ToolCall(name.strip(), arguments)


def _scan_tool_call(text: str, start: int) -> tuple[_Block, int]:
    """Read a ``<tool_call>`` body starting at ``start``; return the block and the end."""
    json_start = _WS_RE.match(text, start).end()  # type: ignore[union-attr]
    try:
        obj, end = _DECODER.raw_decode(text, json_start)
    except (ValueError, RecursionError) as exc:
        close = _CLOSE_RE["tool_call"].search(text, start)
        if close is None:
            raise _Fatal("<tool_call> is never closed with </tool_call>") from None
        body = text[start : close.start()]
        reason = "is empty" if not body.strip() else "is not valid JSON"
        if isinstance(exc, json.JSONDecodeError) and body.strip():
            reason += f" ({exc.msg})"
        block = _Block("tool_call", body, call_error=f"the <tool_call> content {reason}")
        return block, close.end()
    close_match = _CLOSE_TOOL_AFTER_WS.match(text, end)
    body = text[start:end]
    if close_match is not None:
        block, pos = _Block("tool_call", body), close_match.end()
    elif not text[end:].strip():
        block, pos = _Block("tool_call", body, closed=False), len(text)
    else:
        close = _CLOSE_RE["tool_call"].search(text, end)
        if close is None:
            raise _Fatal("<tool_call> is never closed with </tool_call>")
        message = "unexpected text after the JSON object inside <tool_call>"
        return _Block("tool_call", body, call_error=message), close.end()
    result = _to_tool_call(obj)
    if isinstance(result, str):
        block.call_error = result
    else:
        block.call = result
    return block, pos


def _scan(text: str, issues: list[str]) -> tuple[list[_Block], list[tuple[int, str]]]:
    """Split ``text`` into blocks and bare-text segments (each tagged with its block index)."""
    blocks: list[_Block] = []
    bare: list[tuple[int, str]] = []
    pos, actions = 0, 0
    first = _TAG_RE.search(text)
    if first is not None and first.group(1) and first.group(2) == "think":
        blocks.append(_Block("think", text[: first.start()]))  # think opened by the template
        pos = first.end()
    while pos < len(text):
        match = _TAG_RE.search(text, pos)
        if match is None:
            bare.append((len(blocks), text[pos:]))
            break
        if match.start() > pos:
            bare.append((len(blocks), text[pos : match.start()]))
        is_close, tag = bool(match.group(1)), match.group(2)
        pos = match.end()
        if is_close:
            issues.append(f"stray </{tag}> tag")
            continue
        if tag in _ACTIONS:
            actions += 1
            if actions > 1:
                raise _Fatal("exactly one action per turn is allowed (found more than one)")
        if tag == "tool_call":
            block, pos = _scan_tool_call(text, pos)
        else:
            close = _CLOSE_RE[tag].search(text, pos)
            if close is None and tag != "answer":
                raise _Fatal(f"<{tag}> is never closed with </{tag}>")
            end = len(text) if close is None else close.start()
            block = _Block(tag, text[pos:end], closed=close is not None)
            if _OPEN_RE[tag].search(block.content):
                raise _Fatal(f"<{tag}> blocks cannot be nested")
            pos = len(text) if close is None else close.end()
        blocks.append(block)
    return blocks, bare


#: The canonical well-formed tool-call turn: a plan and an optional check with no tag-like
#: text inside, then a ``<tool_call>``. Most turns of a trained policy look like this.
_CANONICAL = re.compile(r"\s*<think>([^<]*)</think>\s*"
                        r"(?:<safety_thoughts>([^<]*)</safety_thoughts>\s*)?<tool_call>")
#: The canonical final answer: the same blocks, then ``<answer>...</answer>`` or bare text.
_CANONICAL_ANSWER = re.compile(r"\s*<think>([^<]*)</think>\s*"
                               r"(?:<safety_thoughts>([^<]*)</safety_thoughts>\s*)?"
                               r"(?:<answer>([^<]*)</answer>|([^<]*))\s*\Z")


def parse_action(text: str, *, refusal_tool: str = REFUSAL_TOOL) -> ParsedAction:
    """Parse one agent turn in the MOSAIC format; never raises.

    Returns a :class:`ParsedAction` whose ``kind`` is ``"invalid"`` (with ``error``, a message
    for the agent naming the problem and the expected format) when the turn holds no single
    well-formed action. See the module docstring for the format-score rule.

    Canonical turns (:data:`_CANONICAL`: a plan without tags inside, an optional check, then
    one JSON call closed by ``</tool_call>``; :data:`_CANONICAL_ANSWER`: the same blocks and a
    non-empty answer) are read on a fast path that gives exactly what the general scan gives
    (a property test checks that the two agree); anything else takes the general scan.
    """
    if isinstance(text, str) and len(text) <= MAX_ACTION_CHARS:
        match = _CANONICAL.match(text)
        if match is not None:
            fast = _parse_canonical(text, match, refusal_tool)
            if fast is not None:
                return fast
        else:
            match = _CANONICAL_ANSWER.match(text)
            answer = None if match is None else (match.group(3) if match.group(3) is not None
                                                 else match.group(4)).strip()
            if match is not None and answer:
                plan = match.group(1).strip()
                safety = match.group(2).strip() if match.group(2) is not None else None
                return ParsedAction("final_answer", plan, safety, None, answer, None, None,
                                    2.0, ())
    return parse_general(text, refusal_tool=refusal_tool)


def _parse_canonical(text: str, match: re.Match[str], refusal_tool: str) -> ParsedAction | None:
    try:
        block, pos = _scan_tool_call(text, match.end())
    except _Fatal:
        return None
    call = block.call
    if call is None or not block.closed or text[pos:].strip():
        return None
    plan = match.group(1).strip()
    safety = match.group(2).strip() if match.group(2) is not None else None
    if call.name == refusal_tool:
        reason = _reason_text(call.arguments.get("reason", ""))
        return ParsedAction("refusal", plan, safety, call, None, reason, None, 2.0, ())
    return ParsedAction("tool_call", plan, safety, call, None, None, None, 2.0, ())


def parse_general(text: str, *, refusal_tool: str = REFUSAL_TOOL) -> ParsedAction:
    """:func:`parse_action` without its fast path (the general scan of any turn)."""
    if not isinstance(text, str):
        return _invalid(f"expected text, got {type(text).__name__}", refusal_tool)
    if len(text) > MAX_ACTION_CHARS:
        message = f"the output is {len(text)} characters long, over the limit of "
        return _invalid(message + f"{MAX_ACTION_CHARS}; write a shorter turn", refusal_tool)
    if not text.strip():
        return _invalid("the output is empty", refusal_tool)
    issues: list[str] = []
    try:
        blocks, bare = _scan(text, issues)
    except _Fatal as exc:
        return _invalid(str(exc), refusal_tool)
    plans = [b.content.strip() for b in blocks if b.tag == "think"]
    checks = [b.content.strip() for b in blocks if b.tag == "safety_thoughts"]
    plan = "\n\n".join(plans) if plans else None
    safety = "\n\n".join(checks) if checks else None
    if not plans:
        issues.append("missing <think> plan")
    ranks = [_RANK[b.tag] for b in blocks]
    if any(a >= b for a, b in zip(ranks, ranks[1:], strict=False)):
        issues.append("blocks must appear once each, in the order think -> safety -> action")
    prose = [(index, segment.strip()) for index, segment in bare if segment.strip()]
    action = next((b for b in blocks if b.tag in _ACTIONS), None)
    if action is None and not prose:
        return _invalid("no action after the plan", refusal_tool, plan=plan, safety=safety)
    if action is None:
        if prose[0][0] < len(blocks):
            issues.append("the final answer must come after the think/safety blocks")
        text_answer = "\n".join(segment for _, segment in prose)
        score = 1.0 if issues else 2.0
        return ParsedAction("final_answer", plan, safety, None, text_answer, None, None, score,
                            tuple(issues))
    if prose:
        issues.append("text outside the blocks around the action")
    if not action.closed:
        issues.append(f"<{action.tag}> is not closed")
    structure = 0.0 if issues else 1.0
    answer = action.content.strip() if action.tag == "answer" else None
    call = action.call
    if (answer is None and call is None) or answer == "":
        message = action.call_error or "the <answer> is empty"
        return _invalid(message, refusal_tool, plan=plan, safety=safety, score=structure,
                        issues=tuple(issues))
    kind: ActionKind = "final_answer" if call is None else "tool_call"
    reason = None
    if call is not None and call.name == refusal_tool:
        kind, reason = "refusal", _reason_text(call.arguments.get("reason", ""))
    return ParsedAction(kind, plan, safety, call, answer, reason, None, structure + 1.0,
                        tuple(issues))


def _reason_text(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        return ""


def _check_block_text(tag: str, content: str) -> None:
    if _OPEN_RE[tag].search(content) or _CLOSE_RE[tag].search(content):
        raise ValueError(f"text for <{tag}> cannot contain <{tag}> or </{tag}> tags")


def render_tool_call(call: ToolCall) -> str:
    """Render ``call`` as a ``<tool_call>`` block (raises ``TypeError`` on non-JSON args)."""
    payload = {"name": call.name, "arguments": dict(call.arguments)}
    return "<tool_call>" + json.dumps(payload, ensure_ascii=False) + "</tool_call>"


def render_action(
    plan: str | None, action: ToolCall | str, safety_check: str | None = None
) -> str:
    """Render a turn; ``action`` is a tool call or a final answer (wrapped in ``<answer>``).

    ``parse_action(render_action(...))`` gives back the same plan, safety check and action,
    up to whitespace around the texts. Raises ``ValueError`` for a text that would break the
    format (one holding its own block's tags, or an empty answer).
    """
    parts: list[str] = []
    if plan is not None:
        _check_block_text("think", plan)
        parts.append("<think>" + plan + "</think>")
    if safety_check is not None:
        _check_block_text("safety_thoughts", safety_check)
        parts.append("<safety_thoughts>" + safety_check + "</safety_thoughts>")
    if isinstance(action, ToolCall):
        parts.append(render_tool_call(action))
    else:
        _check_block_text("answer", action)
        if not action.strip():
            raise ValueError("a final answer cannot be empty")
        parts.append("<answer>" + action + "</answer>")
    return "\n".join(parts)


def count_tokens_approx(text: str) -> int:
    """Estimate a token count cheaply: words in chunks of up to 6 characters, plus symbols."""
    return len(_TOKEN_RE.findall(text))


def safety_token_share(text: str) -> float:
    """Share (0..1) of a turn's approximate tokens spent inside ``<safety_thoughts>``."""
    total = count_tokens_approx(text)
    safety = parse_action(text).safety_check
    return min(1.0, count_tokens_approx(safety) / total) if safety and total else 0.0
