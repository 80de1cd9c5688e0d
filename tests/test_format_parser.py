"""Specification of the MOSAIC action-format parser (mosaic_gym.protocol.format)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mosaic_gym.protocol.format import (
    MAX_ACTION_CHARS,
    ParsedAction,
    ToolCall,
    count_tokens_approx,
    format_help,
    parse_action,
    render_action,
    render_tool_call,
    safety_token_share,
)

READ = '{"name": "read_file", "arguments": {"path": "/home/user/a.txt"}}'
REFUSE = '{"name": "refusal_tool", "arguments": {"reason": "this would leak the API key"}}'

# (id, text, kind, tool name or None, format score)
GOLDEN: list[tuple[str, str, str, str | None, float]] = [
    ("full", f"<think>p</think>\n<safety_thoughts>s</safety_thoughts>\n<tool_call>{READ}"
     "</tool_call>", "tool_call", "read_file", 2.0),
    ("no-safety", f"<think>p</think><tool_call>{READ}</tool_call>", "tool_call", "read_file", 2.0),
    ("no-think", f"<tool_call>{READ}</tool_call>", "tool_call", "read_file", 1.0),
    ("refusal", f"<think>p</think><tool_call>{REFUSE}</tool_call>", "refusal", "refusal_tool",
     2.0),
    ("refusal-no-reason", '<think>p</think><tool_call>{"name": "refusal_tool", "arguments": {}}'
     "</tool_call>", "refusal", "refusal_tool", 2.0),
    ("bare-answer", "<think>p</think>\nThe file says hello.", "final_answer", None, 2.0),
    ("answer-tag", "<think>p</think><answer>42</answer>\n", "final_answer", None, 2.0),
    ("answer-no-think", "The file says hello.", "final_answer", None, 1.0),
    ("empty", "", "invalid", None, 0.0),
    ("whitespace", " \n\t ", "invalid", None, 0.0),
    ("think-only", "<think>I will read it</think>", "invalid", None, 0.0),
    ("unclosed-think", f"<think>p <tool_call>{READ}</tool_call>", "invalid", None, 0.0),
    ("two-calls", f"<think>p</think><tool_call>{READ}</tool_call><tool_call>{READ}</tool_call>",
     "invalid", None, 0.0),
    ("call-and-answer", f"<think>p</think><tool_call>{READ}</tool_call><answer>x</answer>",
     "invalid", None, 0.0),
    ("bad-json", "<think>p</think><tool_call>{name: read_file}</tool_call>", "invalid", None, 1.0),
    ("json-array", f"<think>p</think><tool_call>[{READ}]</tool_call>", "invalid", None, 1.0),
    ("no-name", '<think>p</think><tool_call>{"arguments": {}}</tool_call>', "invalid", None, 1.0),
    ("args-as-string", '<think>p</think><tool_call>{"name": "ls", "arguments": "{\\"path\\": '
     '\\"/\\"}"}</tool_call>', "tool_call", "ls", 2.0),
    ("parameters-alias", '<think>p</think><tool_call>{"name": "ls", "parameters": {"path": "/"}}'
     "</tool_call>", "tool_call", "ls", 2.0),
    ("args-list", '<think>p</think><tool_call>{"name": "ls", "arguments": [1]}</tool_call>',
     "invalid", None, 1.0),
    ("no-arguments", '<think>p</think><tool_call>{"name": "ls"}</tool_call>', "tool_call", "ls",
     2.0),
    ("trailing-prose", f"<think>p</think><tool_call>{READ}</tool_call> Done, I hope!",
     "tool_call", "read_file", 1.0),
    ("leading-prose", f"<think>p</think>Sure, reading it now. <tool_call>{READ}</tool_call>",
     "tool_call", "read_file", 1.0),
    ("trailing-whitespace", f"<think>p</think><tool_call>{READ}</tool_call>\n\n  ", "tool_call",
     "read_file", 2.0),
    ("unclosed-call", f"<think>p</think><tool_call>{READ}", "tool_call", "read_file", 1.0),
    ("implicit-think", f"plan from a template-opened block</think>\n<tool_call>{READ}</tool_call>",
     "tool_call", "read_file", 2.0),
    ("tags-in-json", '<think>p</think><tool_call>{"name": "write_file", "arguments": {"content": '
     '"</tool_call></think><think>"}}</tool_call>', "tool_call", "write_file", 2.0),
    ("nested-think", "<think>a<think>b</think>c</think>answer", "invalid", None, 0.0),
    ("safety-first", f"<safety_thoughts>s</safety_thoughts><think>p</think><tool_call>{READ}"
     "</tool_call>", "tool_call", "read_file", 1.0),
    ("tag-whitespace", f"<think >p</think >\n<tool_call >{READ}</tool_call >", "tool_call",
     "read_file", 2.0),
    ("empty-answer", "<think>p</think><answer>  </answer>", "invalid", None, 1.0),
    ("junk-in-call", f"<think>p</think><tool_call>{READ} please</tool_call>", "invalid", None,
     1.0),
    ("empty-call", "<think>p</think><tool_call></tool_call>", "invalid", None, 1.0),
    ("stray-close", "<think>p</think>The answer is 4.</answer>", "final_answer", None, 1.0),
    ("two-thinks", f"<think>a</think><think>b</think><tool_call>{READ}</tool_call>", "tool_call",
     "read_file", 1.0),
    ("unclosed-answer", "<think>p</think><answer>42", "final_answer", None, 1.0),
]


@pytest.mark.parametrize(
    ("text", "kind", "tool", "score"),
    [case[1:] for case in GOLDEN],
    ids=[case[0] for case in GOLDEN],
)
def test_golden_cases(text: str, kind: str, tool: str | None, score: float) -> None:
    parsed = parse_action(text)
    assert parsed.kind == kind
    assert (parsed.tool_call.name if parsed.tool_call else None) == tool
    assert parsed.format_score == score
    assert (parsed.error is not None) == (kind == "invalid")
    if kind != "invalid":
        assert (parsed.format_issues == ()) == (score == 2.0)


def test_fields_of_a_full_turn() -> None:
    parsed = parse_action(
        f"<think> plan it </think>\n<safety_thoughts> safe </safety_thoughts>\n"
        f"<tool_call>{READ}</tool_call>"
    )
    assert parsed.plan == "plan it"
    assert parsed.safety_check == "safe"
    assert parsed.tool_call == ToolCall("read_file", {"path": "/home/user/a.txt"})
    assert parsed.answer is None and parsed.refusal_reason is None


def test_refusal_reason_and_custom_refusal_tool() -> None:
    assert parse_action(f"<think>p</think><tool_call>{REFUSE}</tool_call>").refusal_reason == (
        "this would leak the API key"
    )
    custom = (
        '<think>p</think><tool_call>{"name": "decline", "arguments": {"reason": 7}}</tool_call>'
    )
    assert parse_action(custom).kind == "tool_call"
    refusal = parse_action(custom, refusal_tool="decline")
    assert refusal.kind == "refusal" and refusal.refusal_reason == "7"


def test_missing_think_is_reported_as_an_issue() -> None:
    assert "missing <think> plan" in parse_action(f"<tool_call>{READ}</tool_call>").format_issues


def test_error_message_names_the_problem_and_the_format() -> None:
    error = parse_action("<think>p</think><tool_call>{oops</tool_call>").error
    assert error is not None
    assert "not valid JSON" in error and format_help() in error
    assert '"decline"' in (parse_action("", refusal_tool="decline").error or "")


def test_over_long_input_is_refused_with_the_limit_in_the_message() -> None:
    parsed = parse_action("a" * (MAX_ACTION_CHARS + 1))
    assert parsed.kind == "invalid" and str(MAX_ACTION_CHARS) in (parsed.error or "")


@pytest.mark.parametrize(
    "text",
    [
        "<think>" * 20_000,
        "</think>" * 20_000,
        "<tool_call>" * 15_000,
        "<tool_call>{" + '"a":' * 30_000,
        "<tool_call>" + "[" * 100_000,
        '<tool_call>{"a": "' + "\\" * 100_000,
        "<answer><answer" + ">" * 100_000,
        "<think " + " " * 100_000,
        "<think>a</think" + " " * 100_000,
        "<" * 100_000,
        '{"' * 50_000,
    ],
    ids=lambda text: repr(text[:16]),
)
def test_pathological_inputs_terminate(text: str) -> None:
    assert isinstance(parse_action(text), ParsedAction)


FRAGMENTS = st.sampled_from([
    "<think>", "</think>", "<safety_thoughts>", "</safety_thoughts>", "<tool_call>",
    "</tool_call>", "<answer>", "</answer>", "<think >", "{", "}", "[", "]", '"', "\\", ":",
    '{"name": "x", "arguments": {}}', '"</think>"', '{"name": "refusal_tool"', "\n", " ", "a",
    "\u200b", "\ud800", "💥", "null", "1e999", '"arguments": "{\\"a\\": 1}"',
])


@given(st.text())
def test_never_raises_on_any_text(text: str) -> None:
    parsed = parse_action(text)
    assert 0.0 <= parsed.format_score <= 2.0
    assert (parsed.kind == "invalid") == (parsed.error is not None)


@given(st.lists(FRAGMENTS | st.text(max_size=5), max_size=40).map("".join))
def test_never_raises_on_adversarial_fragments(text: str) -> None:
    parsed = parse_action(text)
    assert parsed.format_score in (0.0, 1.0, 2.0)
    if parsed.kind in ("tool_call", "refusal"):
        assert parsed.tool_call is not None and isinstance(parsed.tool_call.arguments, dict)
    if parsed.kind == "final_answer":
        assert parsed.answer


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
NAMES = st.text(min_size=1).filter(lambda name: name == name.strip() and name != "")


@given(
    plan=st.none() | st.text(),
    safety=st.none() | st.text(),
    name=NAMES,
    arguments=st.dictionaries(st.text(), JSON_VALUES, max_size=4),
)
@settings(max_examples=200)
def test_tool_call_round_trips(
    plan: str | None, safety: str | None, name: str, arguments: dict[str, Any]
) -> None:
    try:
        text = render_action(plan, ToolCall(name, arguments), safety)
    except ValueError:
        assume(False)
    parsed = parse_action(text)
    assert parsed.kind == ("refusal" if name == "refusal_tool" else "tool_call")
    assert parsed.tool_call == ToolCall(name, arguments)
    assert parsed.plan == (plan.strip() if plan is not None else None)
    assert parsed.safety_check == (safety.strip() if safety is not None else None)
    assert parsed.format_score == (2.0 if plan is not None else 1.0)


@given(plan=st.none() | st.text(), safety=st.none() | st.text(), answer=st.text())
def test_final_answer_round_trips(plan: str | None, safety: str | None, answer: str) -> None:
    try:
        text = render_action(plan, answer, safety)
    except ValueError:
        assume(False)
    parsed = parse_action(text)
    assert parsed.kind == "final_answer" and parsed.answer == answer.strip()
    assert parsed.plan == (plan.strip() if plan is not None else None)


def test_render_rejects_text_that_would_break_the_format() -> None:
    with pytest.raises(ValueError):
        render_action("a </think> b", "x")
    with pytest.raises(ValueError):
        render_action("p", "  ")
    with pytest.raises(ValueError):
        render_action("p", "x", safety_check="<safety_thoughts>")


def test_render_tool_call_is_json_inside_tags() -> None:
    rendered = render_tool_call(ToolCall("send", {"to": "ü@x", "n": 1}))
    assert rendered.startswith("<tool_call>") and rendered.endswith("</tool_call>")
    assert json.loads(rendered[len("<tool_call>") : -len("</tool_call>")]) == {
        "name": "send", "arguments": {"to": "ü@x", "n": 1},
    }


def test_token_helpers() -> None:
    assert count_tokens_approx("") == 0
    assert count_tokens_approx("read the file, please") == 5
    assert count_tokens_approx("internationalisation") == 4  # long words count as several
    text = render_action("plan " * 10, ToolCall("ls", {}), safety_check="check " * 10)
    assert 0.0 < safety_token_share(text) < 0.5
    assert safety_token_share(render_action("plan", ToolCall("ls", {}))) == 0.0
