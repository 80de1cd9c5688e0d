"""The parser's fast path for canonical turns gives exactly what the general scan gives."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from mosaic_gym.protocol.format import parse_action, parse_general

SPACE = st.sampled_from(["", " ", "\n", "\n\n", "\t "])
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40) | \
    st.sampled_from(["plan", "a < b", "</think>", "<think>", "<answer>", "x</tool_call>", ""])
VALUE = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)


@st.composite
def call_json(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(["read_file", "refusal_tool", "", " send_email ", "x"]))
    obj = {"name": name, "arguments": draw(st.dictionaries(st.sampled_from(
        ["path", "reason", "to", "body"]), VALUE, max_size=3) | VALUE)}
    if draw(st.booleans()):
        obj = {"name": name}
    text = json.dumps(obj, ensure_ascii=draw(st.booleans()))
    return draw(st.sampled_from([text, text[:-1], text + "}", " " + text, "not json"]))


@st.composite
def turns(draw: st.DrawFn) -> str:
    parts = [draw(SPACE), "<think>", draw(TEXT), "</think>", draw(SPACE)]
    if draw(st.booleans()):
        parts += ["<safety_thoughts>", draw(TEXT), "</safety_thoughts>", draw(SPACE)]
    action = draw(st.sampled_from(["call", "answer", "bare", "call-unclosed", "two"]))
    if action in ("call", "two"):
        parts += ["<tool_call>", draw(call_json()), "</tool_call>"]
    if action == "call-unclosed":
        parts += ["<tool_call>", draw(call_json())]
    if action in ("answer", "two"):
        parts += ["<answer>", draw(TEXT), "</answer>"]
    if action == "bare":
        parts.append(draw(TEXT))
    parts.append(draw(SPACE | TEXT))
    return "".join(parts)


@settings(max_examples=600, deadline=None)
@given(turns())
def test_fast_path_agrees_with_the_general_scan(text: str) -> None:
    assert parse_action(text) == parse_general(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_agrees(text: str) -> None:
    assert parse_action(text) == parse_general(text)
