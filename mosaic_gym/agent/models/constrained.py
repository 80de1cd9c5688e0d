"""Constrained decoding of tool calls: offered tool names, their argument names, valid JSON.

A documented *policy option* (``constrained: true`` in a transformers recipe,
``TransformersPolicy(constrained=True)``, ``Plan.constrained`` in ``mosaic replicate``).
Outside a ``<tool_call>`` block the model writes freely (plans, safety checks, answers).
From the ``<tool_call>`` token on, a logits processor masks every token that would leave the
grammar of a canonical MOSAIC tool call for *this episode's* tools::

    {"name": "<an offered tool>", "arguments": {"<a parameter of it>": <value>, ...}}

with the spacing ``json.dumps`` writes (the teachers' rendering), each parameter at most once,
the required ones before the closing brace, values typed by the schema (string, number,
integer, boolean, array; JSON strings with escapes). Once the call is complete only
``</tool_call>`` is allowed, and after it only the end of the turn. *What* the values are
(copied from the context or not) is left to the model; the environment still judges the
call. The same processor is applied when GRPO and DPO rollouts are generated for training and
when a model is evaluated, so the policy that is trained is the policy that is scored.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

NAME_OPEN = '{"name": "'
# JSON numbers (RFC 8259): complete ones, and the prefixes that can still become one.
_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_INT_PREFIX = re.compile(r"-?|-?(0|[1-9][0-9]*)")
_NUM = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_NUM_PREFIX = re.compile(r"-?|-?(0|[1-9][0-9]*)(\.[0-9]*)?"
                         r"|-?(0|[1-9][0-9]*)(\.[0-9]+)?[eE][+-]?[0-9]*")
ARGS_OPEN = ', "arguments": {'
_WORD = re.compile(r"\w")
_WORD_TAIL = re.compile(r"\w+")


def span_pattern(text: str, *, whole: bool = False) -> str:
    """A regular expression finding ``text`` where a span of the context may start (not
    inside a word: ``"chec"`` of ``checking@...`` is a span start, ``"hecking"`` is not)
    and, with ``whole``, also end (``"chec"`` is not a whole span there, ``"checking"`` is).
    Text that starts or ends with a non-word character is free at that end."""
    head = "(?<!\\w)" if _WORD.match(text[0]) else ""
    tail = "(?!\\w)" if whole and _WORD.match(text[-1]) else ""
    return head + re.escape(text) + tail


SEPARATOR = ", "
COLON = ": "


@dataclass(frozen=True)
class Schema:
    """A tool's name, parameter types and required parameters."""

    name: str
    types: Mapping[str, str]
    required: frozenset[str]


def schemas(tools: Sequence[Mapping[str, Any]]) -> dict[str, Schema]:
    """Tool schemas (OpenAI function format, as ``info["tools"]``) by name."""
    found: dict[str, Schema] = {}
    for tool in tools:
        fn = tool.get("function", tool)
        params = fn.get("parameters") or {}
        props = params.get("properties") or {}
        found[fn["name"]] = Schema(fn["name"], {k: str(v.get("type") or "any")
                                                for k, v in props.items()},
                                   frozenset(params.get("required") or ()))
    return found


@dataclass(frozen=True)
class Walk:
    """Where a partial tool-call text stands in the grammar (immutable: cheap to branch)."""

    phase: str = "lit"  # lit, name, argname, value, after, close, done
    lit: str = NAME_OPEN
    then: str = "name"
    buf: str = ""
    tool: str = ""
    used: tuple[str, ...] = ()
    arg: str = ""
    value: str = ""  # sub-state of a value: str, esc, u1..u4, num, int, bool:<rest>, arr...
    items: int = 0
    extra: tuple[str, ...] = field(default=())
    #: a copied value's text so far (JSON-escaped), for parameters under the copy constraint
    text: str = ""


def _value_start(kind: str) -> tuple[str, ...]:
    if kind == "string":
        return ('"',)
    if kind in ("number", "integer"):
        return tuple("-0123456789")
    if kind == "boolean":
        return ("t", "f")
    if kind == "array":
        return ("[",)
    return ('"', "t", "f", "[", *"-0123456789")


class Grammar:
    """The tool-call grammar of one episode's tools; :meth:`step` advances a :class:`Walk`
    by one character (``None``: the character leaves the grammar)."""

    def __init__(self, tools: Sequence[Mapping[str, Any]], *,
                 copy: Mapping[str, Sequence[str]] | None = None, context: str = "",
                 spans: bool = False) -> None:
        self.tools = schemas(tools)
        self.names = sorted(self.tools)
        #: identifies the grammar (for caching the allowed tokens of a state)
        self.signature = tuple((t.name, tuple(sorted(t.types.items())), tuple(sorted(t.required)))
                               for t in sorted(self.tools.values(), key=lambda t: t.name))
        #: (tool, parameter) pairs whose string and number values must be copied from
        #: ``context`` (see :func:`copy_table`); ``context`` is JSON-escaped text
        self.copy = frozenset((tool, arg) for tool, args in (copy or {}).items()
                              for arg in args if tool in self.tools)
        self.context = context
        self.context_key = hash((context, spans)) if self.copy else None
        #: ``constrained: span``: a copied string is a whole span of ``context`` (it starts
        #: and ends where a word does, see :func:`span_pattern`), not any substring of it
        self.spans = spans

    def _occurs(self, text: str, *, whole: bool = False) -> bool:
        """Whether a copied string's text so far (``whole``: the finished value) may be
        copied from the context."""
        if not self.spans:
            return text in self.context
        return not text or re.search(span_pattern(text, whole=whole), self.context) is not None

    def _span_rest(self, text: str) -> str:
        """The shortest characters that make ``text`` a whole span of the context (``""``
        when it already is one): the rest of the word it stops inside."""
        if not self.spans or not text or self._occurs(text, whole=True):
            return ""
        best = None
        for match in re.finditer(span_pattern(text), self.context):
            end = match.end()
            rest = _WORD_TAIL.match(self.context, end)
            tail = rest.group(0) if rest else ""
            if best is None or len(tail) < len(best):
                best = tail
        return best or ""

    def copy_sensitive(self, walk: Walk) -> bool:
        """Whether the tokens allowed at ``walk`` depend on the context (not memoisable by
        the grammar's signature alone)."""
        return bool(self.copy) and any(tool == walk.tool for tool, _arg in self.copy)

    def _copied(self, walk: Walk) -> bool:
        return (walk.tool, walk.arg) in self.copy

    def _kind(self, walk: Walk) -> str:
        return self.tools[walk.tool].types.get(walk.arg, "any")

    def _can_close(self, walk: Walk) -> bool:
        return self.tools[walk.tool].required <= set(walk.used)

    def step(self, walk: Walk, c: str) -> Walk | None:  # noqa: C901 - one state machine
        phase = walk.phase
        if phase == "lit":
            if not walk.lit or walk.lit[0] != c:
                return None
            rest = walk.lit[1:]
            if rest:
                return replace(walk, lit=rest)
            if walk.then == "value":
                return replace(walk, phase="value", value="start", lit="")
            return replace(walk, phase=walk.then, lit="", buf="")
        if phase == "name":
            if c == '"':
                return (replace(walk, phase="lit", lit=ARGS_OPEN[0:], then="args", tool=walk.buf,
                                buf="") if walk.buf in self.tools else None)
            text = walk.buf + c
            return replace(walk, buf=text) if any(n.startswith(text) for n in self.names) \
                else None
        if phase == "args":  # just after "{" of the arguments
            if c == "}":
                return replace(walk, phase="close") if self._can_close(walk) else None
            if c == '"':  # a tool without parameters takes only "{}"
                return (replace(walk, phase="argname", buf="") if self.tools[walk.tool].types
                        else None)
            return None
        if phase == "argname":
            free = [p for p in self.tools[walk.tool].types if p not in walk.used]
            if c == '"':
                if walk.buf not in free:
                    return None
                return replace(walk, phase="lit", lit=COLON, then="value", arg=walk.buf,
                               used=(*walk.used, walk.buf), buf="")
            text = walk.buf + c
            return replace(walk, buf=text) if any(p.startswith(text) for p in free) else None
        if phase == "value":
            return self._value(walk, c)
        if phase == "after":  # a value ended: ", " and the next name, or "}"
            if c == "}":
                return replace(walk, phase="close") if self._can_close(walk) else None
            if c == ",":
                if not [p for p in self.tools[walk.tool].types if p not in walk.used]:
                    return None
                return replace(walk, phase="lit", lit=' "', then="argname")
            return None
        if phase == "close":
            return replace(walk, phase="done") if c == "}" else None
        return None  # done: nothing more inside the block

    def _value(self, walk: Walk, c: str) -> Walk | None:
        nxt = self._value_step(walk, c)
        if nxt is None or not self._copied(walk):
            return nxt
        if nxt.phase != "value":  # the value ended on this character
            if walk.value == "str" and c == '"' and not self._occurs(walk.text, whole=True):
                return None
            return replace(nxt, text="")
        v = walk.value
        if nxt.value in ("num", "int"):  # a number's digits so far must occur in the context
            return nxt if nxt.buf in self.context else None
        if v == "astr" and c == '"':  # an item closes
            return replace(nxt, text="") if self._occurs(walk.text, whole=True) else None
        if v in ("start", "arr", "arr-next"):
            return replace(nxt, text="")  # a string or an item opens
        if v.startswith(("str", "astr")):  # inside a string, escapes included
            text = walk.text + c
            return replace(nxt, text=text) if self._occurs(text) else None
        return nxt

    def _value_step(self, walk: Walk, c: str) -> Walk | None:  # noqa: C901
        v = walk.value
        if v == "start":
            kind = self._kind(walk)
            if c not in _value_start(kind):
                return None
            if c == '"':
                return replace(walk, value="str")
            if c == "[":
                return replace(walk, value="arr", items=0)
            if c in "tf":
                return replace(walk, value="bool:" + ("rue" if c == "t" else "alse"))
            return replace(walk, value="int" if kind == "integer" else "num", buf=c)
        if v in ("str", "astr"):
            if c == "\\":
                return replace(walk, value=v + "-esc")
            if c == '"':
                return (replace(walk, phase="after", value="") if v == "str"
                        else replace(walk, value="arr-item"))
            return None if ord(c) < 0x20 else walk
        if v.endswith("-esc"):
            base = v[: -len("-esc")]
            if c in '"\\/bfnrt':
                return replace(walk, value=base)
            return replace(walk, value=base + "-u4") if c == "u" else None
        if "-u" in v:
            base, count = v.rsplit("-u", 1)
            if c.lower() not in "0123456789abcdef":
                return None
            left = int(count) - 1
            return replace(walk, value=base if left == 0 else f"{base}-u{left}")
        if v.startswith("bool:"):
            rest = v[5:]
            if not rest or rest[0] != c:
                return None
            return (replace(walk, value="bool:" + rest[1:]) if len(rest) > 1
                    else replace(walk, phase="after", value=""))
        if v in ("num", "int"):
            prefix, whole = (_NUM_PREFIX, _NUM) if v == "num" else (_INT_PREFIX, _INT)
            if prefix.fullmatch(walk.buf + c):
                return replace(walk, buf=walk.buf + c)
            if whole.fullmatch(walk.buf):  # the number ends here; the char must follow it
                done = replace(walk, phase="after", value="", buf="")
                return self.step(done, c)
            return None
        if v == "arr":  # after "[" or ", " inside an array
            if c == "]" and walk.items == 0:
                return replace(walk, phase="after", value="")
            if c == '"':
                return replace(walk, value="astr", items=walk.items + 1)
            return None
        if v == "arr-item":  # a string item ended
            if c == "]":
                return replace(walk, phase="after", value="")
            return replace(walk, value="arr-sep") if c == "," else None
        if v == "arr-sep":
            return replace(walk, value="arr-next") if c == " " else None
        if v == "arr-next":
            return replace(walk, value="astr", items=walk.items + 1) if c == '"' else None
        return None

    def _next_close(self, walk: Walk) -> str:  # noqa: C901 - one case per state
        """The next characters of the shortest way from ``walk`` to a complete call."""
        phase, v = walk.phase, walk.value
        if phase == "lit":
            return walk.lit
        if phase == "name":
            names = [n for n in self.names if n.startswith(walk.buf)]
            return min(names, key=lambda n: (len(n), n))[len(walk.buf):] + '"' if names else ""
        if phase in ("args", "after"):
            if self._can_close(walk):
                return "}"
            return '"' if phase == "args" else ","
        if phase == "argname":
            schema = self.tools[walk.tool]
            free = [p for p in schema.types if p not in walk.used and p.startswith(walk.buf)]
            needed = [p for p in free if p in schema.required and p not in walk.used]
            if not (needed or free):  # no way out (finish() then says None)
                return ""
            return min(needed or free, key=lambda n: (len(n), n))[len(walk.buf):] + '"'
        if phase == "close":
            return "}"
        if phase != "value":
            return ""
        if v == "start":
            return {"number": "0", "integer": "0", "boolean": "t", "array": "["}.get(
                self._kind(walk), '"')
        if v in ("str", "astr"):
            return (self._span_rest(walk.text) if self._copied(walk) else "") + '"'
        if v == "arr-next":
            return '"'
        if v.endswith("-esc"):
            return '"'  # an escaped quote: back inside the string
        if "-u" in v:
            return "0" * int(v.rsplit("-u", 1)[1])
        if v.startswith("bool:"):
            return v[5:]
        if v in ("num", "int"):
            if (_NUM if v == "num" else _INT).fullmatch(walk.buf):
                return "}" if self._can_close(walk) else ","
            return "0"
        if v in ("arr", "arr-item"):
            return "]"
        if v == "arr-sep":
            return " "
        return ""

    def finish(self, walk: Walk | None) -> str | None:
        """The shortest text that completes the call from ``walk`` (``""`` when it is
        complete; ``None`` when ``walk`` is outside the grammar). Missing required arguments
        get the shortest value of their type (``""``, ``0``, ``true``, ``[]``)."""
        text = ""
        for _ in range(10_000):  # bounded: every tool name and parameter is finite
            if walk is None:
                return None
            if walk.phase == "done":
                return text
            chunk = self._next_close(walk)
            if not chunk:
                return None
            for c in chunk:
                walk = self.step(walk, c) if walk is not None else None
            text += chunk
        return None

    def advance(self, walk: Walk | None, text: str) -> Walk | None:
        for c in text:
            if walk is None:
                return None
            walk = self.step(walk, c)
        return walk


class ToolCallLogitsProcessor:
    """A ``transformers`` logits processor enforcing :class:`Grammar` inside tool calls.

    ``tools`` holds one tool list per row of the batch; ``prompt_width`` is where the
    generated tokens start (prompts are left-padded to the same width). The state of each
    row is advanced token by token, so a step costs one pass over the candidate tokens of
    the rows that are inside a call (tokens are grouped by their first character).

    With ``budget`` (the turn's ``max_new_tokens``, counted from ``prompt_width``), a row
    whose remaining tokens only just cover the shortest completion of its open call
    (:meth:`Grammar.finish`, at most one token per character, plus ``</tool_call>``) may
    only write that completion: a call that would run out of tokens is closed, with the
    shortest values for what is missing, instead of being cut off as a format error. The
    same budget closes a ``<think>`` still open when half of it is spent, and a
    ``<safety_thoughts>`` still open with a third left (where the tokenizer has the tags as
    single tokens): a plan that runs on (an undertrained model repeating digits) leaves room
    for the action instead of ending the turn as a format error. Teachers' plans take at
    most 123 tokens of the tiny tokenizer (99 % under 67), inside half of a 256-token turn.
    """

    def __init__(self, tokenizer: Any, tools: Sequence[Sequence[Mapping[str, Any]]],
                 prompt_width: int, *, vocab: Mapping[str, Any] | None = None,
                 budget: int | None = None,
                 copy: Mapping[str, Sequence[str]] | None = None) -> None:
        self.prompt_width = prompt_width
        self.budget = budget
        self.tokenizer = tokenizer
        self.tool_lists = [list(t) for t in tools]
        #: the copy table (see :func:`copy_table`); the context of a row is its prompt,
        #: decoded at the first step
        self.copy = dict(copy or {})
        #: ``constrained: span`` (a :class:`CopyTable` with ``spans``): copied strings are
        #: whole spans of what the system, the user and the tools said, never of the
        #: model's own earlier turns
        self.spans = bool(getattr(copy, "spans", False))
        self._contexts_set = not self.copy
        #: rows whose call was closed early for the token budget (a diagnostic count)
        self.forced_closes = 0
        self._forcing: set[int] = set()
        self.grammars = [Grammar(t) for t in tools]
        # How much one token can lengthen the shortest completion (a longer tool name, or
        # an optional argument's name and value): the budget is watched from that far out.
        self.margins = [max((len(n) for n in g.names), default=0)
                        + max((len(p) for t in g.tools.values() for p in t.types), default=0)
                        + 16 for g in self.grammars]
        cache = vocab if vocab is not None else token_table(tokenizer)
        self.texts: list[str] = cache["texts"]
        self.by_first: dict[str, list[int]] = cache["by_first"]
        self.plain: list[int] = cache["plain"]
        self.quoted: list[int] = cache["quoted"]
        self.quoted_set = frozenset(self.quoted)
        self.open_id: int = cache["open"]
        self.close_id: int = cache["close"]
        self.end_ids: list[int] = cache["end"]
        #: block -> (opening id, closing id, share of the budget left when it is closed)
        self.blocks: dict[str, tuple[int, int, float]] = {
            name: (*ids, share) for name, share in (("think", 1 / 2), ("safety", 1 / 3))
            if (ids := cache.get("blocks", {}).get(name)) is not None}
        #: rows whose plan or safety check was closed for the budget (a diagnostic count)
        self.forced_blocks = 0
        # allowed token ids (as an index tensor) per (grammar, state): states repeat a lot
        # (every character of a string value is the same state), so most steps are lookups
        self.memo: dict[Any, Any] = cache.setdefault("memo", {})
        # per row: (tokens seen, mode, walk); mode: free, call, closed
        self.rows: list[tuple[int, str, Walk | None]] = [(0, "free", None)] * len(tools)

    def _update(self, row: int, generated: Sequence[int]) -> tuple[str, Walk | None]:
        seen, mode, walk = self.rows[row]
        for token in generated[seen:]:
            if mode in ("free", *self.blocks) and token == self.open_id:
                mode, walk = "call", Walk()
            elif mode == "free":
                mode = next((name for name, (start, _e, _s) in self.blocks.items()
                             if token == start), "free")
            elif mode in self.blocks:
                mode = "free" if token == self.blocks[mode][1] else mode
            elif mode == "call":
                if token == self.close_id:
                    mode, walk = "closed", None
                else:
                    walk = self.grammars[row].advance(walk, self.texts[token])
        self.rows[row] = (len(generated), mode, walk)
        return mode, walk

    def allowed(self, row: int, walk: Walk | None) -> list[int]:
        """Token ids allowed next for a row inside a call at ``walk``."""
        if walk is None:  # fell out of the grammar (cannot happen when masked from the start)
            return [self.close_id]
        if walk.phase == "done":
            return [self.close_id]
        grammar = self.grammars[row]
        if walk.phase == "value" and walk.value in ("str", "astr") and not grammar._copied(walk):
            ids = list(self.plain)  # no quote, backslash or control char: always fine
            return ids + [t for t in self.quoted
                          if grammar.advance(walk, self.texts[t]) is not None]
        ids = []
        for first, group in self.by_first.items():
            if grammar.step(walk, first) is None:
                continue
            ids += [t for t in group if grammar.advance(walk, self.texts[t]) is not None]
        return ids

    def closing(self, row: int, walk: Walk | None, remaining: int) -> list[int] | None:
        """The tokens allowed near the end of the budget, or ``None`` (no limit yet).

        ``remaining`` counts the tokens still to be written, this one included. The
        invariant kept is ``len(shortest completion) + 1 <= remaining`` (one token per
        character at worst, plus ``</tool_call>``): a token is allowed only if it holds
        after it, so choosing a long optional argument cannot outrun the budget. The tokens
        of the shortest completion itself always keep it; if it was already broken (a budget
        smaller than the shortest call), only they are allowed.
        """
        if self.budget is None or walk is None:
            return None
        grammar = self.grammars[row]
        rest = grammar.finish(walk)
        if rest is None or remaining > len(rest) + 1 + self.margins[row]:
            return None
        if not rest:
            return [self.close_id]
        path = [t for t in self.by_first.get(rest[0], ()) if rest.startswith(self.texts[t])]
        if len(rest) + 1 > remaining:  # too late for anything but the shortest way
            return path or None
        keep = set(path)
        in_string = walk.phase == "value" and walk.value in ("str", "astr")
        for token in self.allowed(row, walk):
            if token in keep:
                continue
            if in_string and token not in self.quoted_set \
                    and not (grammar.spans and grammar._copied(walk)):
                after = len(rest)  # a plain token leaves the string state, and so the rest
            else:
                nxt = grammar.advance(walk, self.texts[token])
                tail = grammar.finish(nxt) if nxt is not None else None
                if tail is None:
                    continue
                after = len(tail)
            if after + 1 <= remaining - 1:
                keep.add(token)
        return sorted(keep) or None

    def _set_contexts(self, input_ids: Any) -> None:
        """Give every row's grammar its prompt as the text values may be copied from."""
        for row in range(input_ids.shape[0]):
            ids = input_ids[row, :self.prompt_width].tolist()
            prompt = (said_to_model(self.tokenizer, ids) if self.spans
                      else self.tokenizer.decode(ids, skip_special_tokens=True))
            self.grammars[row] = Grammar(self.tool_lists[row], copy=self.copy,
                                         context=escaped(prompt), spans=self.spans)
        self._contexts_set = True

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if not self._contexts_set:
            self._set_contexts(input_ids)
        for row in range(input_ids.shape[0]):
            generated = input_ids[row, self.prompt_width:].tolist()
            mode, walk = self._update(row, generated)
            if mode == "free":
                continue
            if mode in self.blocks:
                _start, end, share = self.blocks[mode]
                if self.budget is None or self.budget - len(generated) > share * self.budget:
                    continue
                self.forced_blocks += 1
                keep = torch.full_like(scores[row], float("-inf"))
                keep[end] = scores[row, end]
                scores[row] = keep
                continue
            if mode == "call" and self.budget is not None:
                forced = self.closing(row, walk, self.budget - len(generated))
                if forced is not None:
                    rest = self.grammars[row].finish(walk) or ""
                    if row not in self._forcing and len(rest) + 1 >= self.budget - len(generated):
                        self._forcing.add(row)
                        self.forced_closes += 1
                    index = torch.tensor(forced, dtype=torch.long, device=scores.device)
                    keep = torch.full_like(scores[row], float("-inf"))
                    keep[index] = scores[row, index]
                    scores[row] = keep
                    continue
            grammar = self.grammars[row]
            key = (("closed",) if mode == "closed" else
                   (grammar.signature, walk, grammar.context_key) if grammar.copy_sensitive(walk)
                   else (grammar.signature, walk))
            index = self.memo.get(key)
            if index is None:
                ids = self.end_ids if mode == "closed" else self.allowed(row, walk)
                index = torch.tensor(ids or [self.close_id], dtype=torch.long)
                if len(self.memo) > 200_000:
                    self.memo.clear()
                self.memo[key] = index
            index = index.to(scores.device)
            keep = torch.full_like(scores[row], float("-inf"))
            keep[index] = scores[row, index]
            scores[row] = keep
        return scores


def token_table(tokenizer: Any) -> dict[str, Any]:
    """What the processor needs of a tokenizer, computed once per tokenizer: each token's
    text, tokens grouped by first character, the "plain" ones (no quote, backslash or
    control character: always valid inside a string), and the ids of ``<tool_call>``,
    ``</tool_call>`` and the end-of-turn tokens. Special tokens are never candidates."""
    cached = getattr(tokenizer, "_mosaic_token_table", None)
    if cached is not None:
        return cached
    size = len(tokenizer)
    special = set(tokenizer.all_special_ids)
    open_id = tokenizer.convert_tokens_to_ids("<tool_call>")
    close_id = tokenizer.convert_tokens_to_ids("</tool_call>")
    texts = [tokenizer.decode([i], skip_special_tokens=False) for i in range(size)]
    by_first: dict[str, list[int]] = {}
    plain: list[int] = []
    quoted: list[int] = []
    for i, text in enumerate(texts):
        if i in special or i in (open_id, close_id) or not text or text.startswith("<") \
                and text in ("<think>", "</think>", "<safety_thoughts>",
                             "</safety_thoughts>", "<answer>", "</answer>"):
            continue
        by_first.setdefault(text[0], []).append(i)
        if all(ch not in '"\\' and ord(ch) >= 0x20 for ch in text):
            plain.append(i)
        else:
            quoted.append(i)
    end = [i for i in {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")}
           if isinstance(i, int) and i >= 0]
    blocks = {}
    for name, tags in (("think", ("<think>", "</think>")),
                       ("safety", ("<safety_thoughts>", "</safety_thoughts>"))):
        tag_ids = [tokenizer.convert_tokens_to_ids(tag) for tag in tags]
        if all(isinstance(i, int) and 0 <= i < size and texts[i] == tag
               for i, tag in zip(tag_ids, tags, strict=True)):
            blocks[name] = (tag_ids[0], tag_ids[1])
    table = {"texts": texts, "by_first": by_first, "plain": plain, "quoted": quoted,
             "open": open_id, "blocks": blocks,
             "close": close_id, "end": end}
    with contextlib.suppress(AttributeError):  # a tokenizer that refuses attributes
        tokenizer._mosaic_token_table = table
    return table


def said_to_model(tokenizer: Any, ids: Sequence[int]) -> str:
    """The text of a ChatML prompt without its assistant turns: what the system, the user
    and the tools said, which is where ``constrained: span`` copies values from (a model
    that copies from its own earlier plans repeats what it made up). A prompt without
    ``<|im_start|>`` markers is kept whole."""
    text = tokenizer.decode(list(ids), skip_special_tokens=False)
    if "<|im_start|>" in text:
        text = "".join(part for part in text.split("<|im_start|>")
                       if not part.startswith("assistant"))
    for token in sorted(set(tokenizer.all_special_tokens), key=len, reverse=True):
        text = text.replace(token, "")
    return text


def escaped(text: str) -> str:
    """``text`` as it reads inside a JSON string of a tool call (the teachers' rendering,
    ``ensure_ascii=False``): what a copied value is compared with."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


COPY_TABLE = "mosaic_copy.json"


def copy_table(records: Sequence[Any], *, min_share: float = 0.85,
               min_count: int = 5) -> dict[str, list[str]]:
    """The parameters whose values the teacher copies from the context: for each tool, the
    string, number and string-array parameters of which at least ``min_share`` of the
    teacher's values (over at least ``min_count``) occur verbatim (JSON-escaped) in the
    messages before the call. Values it composes (shell commands, email bodies, file
    contents, paths joined from a folder and a listed name) fall below the share and stay
    free. Learnt from the SFT data, saved next to the model (:data:`COPY_TABLE`)."""
    counts: dict[tuple[str, str], list[int]] = {}
    for record in records:
        messages = record.messages if hasattr(record, "messages") else record["messages"]
        context = ""
        for message in messages:
            for call in (message.get("tool_calls") or [])[:1] \
                    if message.get("role") == "assistant" else ():
                function = call.get("function", {})
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except ValueError:
                    continue
                for arg, value in (arguments.items() if isinstance(arguments, dict) else ()):
                    values = value if isinstance(value, list) else [value]
                    for item in values:
                        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                            continue
                        text = escaped(item) if isinstance(item, str) else json.dumps(item)
                        hit = counts.setdefault((function.get("name", ""), arg), [0, 0])
                        hit[0] += text in context
                        hit[1] += 1
            content = message.get("content")
            context += "\n" + escaped(content if isinstance(content, str)
                                       else json.dumps(content, ensure_ascii=False))
    table: dict[str, list[str]] = {}
    for (tool, arg), (copied, total) in sorted(counts.items()):
        if total >= min_count and copied >= min_share * total:
            table.setdefault(tool, []).append(arg)
    return table


class CopyTable(dict):
    """A copy table (``{tool: [parameter, ...]}``) with its rule: ``spans`` for
    ``constrained: span`` (whole spans of the non-assistant context), else any substring
    of the prompt (``constrained: copy``)."""

    def __init__(self, table: Mapping[str, list[str]], *, spans: bool = False) -> None:
        super().__init__(table)
        self.spans = spans


def load_copy_table(model_dir: str | Path) -> dict[str, list[str]]:
    """The copy table saved with a model (``constrained: copy`` needs one)."""
    path = Path(model_dir) / COPY_TABLE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: copy-constrained decoding needs the copy table written by "
            "SFT (mosaic_gym.train.sft.run_sft), or write one with "
            "`python -m mosaic_gym.train.sft --copy-table MODEL_DIR`")
    table = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(a, str) for a in v)
            for k, v in table.items()):
        raise ValueError(f"{path}: expected {{tool: [parameter, ...]}}")
    return table


def decoding_mode(constrained: Any, model: Any = None) -> tuple[bool, dict[str, list[str]] | None]:
    """``(grammar on, copy table or None)`` for a ``constrained`` option: ``False`` (free
    decoding), ``True`` / ``"grammar"`` (the tool-call grammar), ``"copy"`` (the grammar,
    and the values of the parameters in the model's copy table copied from the context) or
    ``"span"`` (as ``"copy"``, but a copied string is a whole span, word-aligned at both
    ends, of what the system, user and tools said: a :class:`CopyTable` with ``spans``);
    ``model`` is the model folder, or a loaded model whose ``name_or_path`` is one)."""
    if constrained in (False, None, "false", "off", "none"):
        return False, None
    if constrained in (True, "true", "on", "grammar"):
        return True, None
    if constrained in ("copy", "span"):
        folder = model if isinstance(model, (str, Path)) else getattr(model, "name_or_path", None)
        if not folder:
            raise ValueError(f"constrained={constrained!r} needs the model's folder (its copy "
                             "table)")
        return True, CopyTable(load_copy_table(folder), spans=constrained == "span")
    raise ValueError("constrained must be false, true, 'grammar', 'copy' or 'span', not "
                     f"{constrained!r}")


def carry_copy_table(source: str | Path, target: str | Path) -> None:
    """Copy a model folder's copy table into the folder of a model trained from it (RL
    keeps the SFT model's table, so ``constrained: copy`` means the same for both)."""
    if not isinstance(source, (str, Path)):
        return
    path = Path(source) / COPY_TABLE
    if path.is_file():
        (Path(target) / COPY_TABLE).write_text(path.read_text(encoding="utf-8"),
                                               encoding="utf-8")
