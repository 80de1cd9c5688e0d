"""Constrained decoding of tool calls: the grammar accepts every teacher call and rejects
tools, arguments and JSON the episode does not allow; the logits processor only lets such
text through."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from mosaic_gym.agent.models.constrained import Grammar, Walk

TOOLS = [
    {"type": "function", "function": {"name": "read_file", "parameters": {
        "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}},
    {"type": "function", "function": {"name": "transfer_money", "parameters": {
        "type": "object", "properties": {"amount": {"type": "number"},
                                         "to_account": {"type": "string"},
                                         "memo": {"type": "string"},
                                         "urgent": {"type": "boolean"},
                                         "tags": {"type": "array"}},
        "required": ["amount", "to_account"]}}},
]


def done(text: str) -> bool:
    walk = Grammar(TOOLS).advance(Walk(), text)
    return walk is not None and walk.phase == "done"


def viable(text: str) -> bool:
    return Grammar(TOOLS).advance(Walk(), text) is not None


def call(name: str, **args) -> str:
    return json.dumps({"name": name, "arguments": args}, ensure_ascii=False)


def test_accepts_canonical_calls() -> None:
    assert done(call("read_file", path='/tmp/a "quoted" \\ file\nx'))
    assert done(call("transfer_money", amount=12.5, to_account="DE12", memo="ü", urgent=True,
                     tags=["a", "b"]))
    assert done(call("transfer_money", to_account="DE12", amount=-3, tags=[]))


@pytest.mark.parametrize("text", [
    call("list_emails"),                           # a tool the episode does not offer
    call("read_file", filename="/tmp/a"),          # a wrong argument name
    call("read_file"),                             # a required argument missing
    call("transfer_money", amount="12", to_account="x"),  # a string where a number goes
    '{"name": "read_file", "arguments": {"path": "/a", "path": "/b"}}',  # twice
    '{"name": "read_file", "arguments": {"path": "/a"}',  # unbalanced
    '{"name":"read_file","arguments":{"path":"/a"}}',  # not the canonical spacing
    # numbers that are not JSON numbers
    '{"name": "transfer_money", "arguments": {"amount": 8...48, "to_account": "x"}}',
    '{"name": "transfer_money", "arguments": {"amount": 05, "to_account": "x"}}',
    '{"name": "transfer_money", "arguments": {"amount": 1e, "to_account": "x"}}',
    '{"name": "transfer_money", "arguments": {"amount": -, "to_account": "x"}}',
    '{"name": "transfer_money", "arguments": {"amount": 1.5.2, "to_account": "x"}}',
])
def test_rejects_what_the_episode_does_not_allow(text: str) -> None:
    assert not done(text)


def test_prefixes_stay_viable_until_they_break() -> None:
    text = call("read_file", path="/tmp/x")
    assert all(viable(text[:i]) for i in range(len(text) + 1))
    assert not viable('{"name": "rea_')
    assert not viable('{"name": "read_file", "arguments": {"pa"x')


def test_every_teacher_call_of_the_library_is_accepted() -> None:
    from mosaic_gym.agent.baselines import make_baseline
    from mosaic_gym.envs.mosaic_env import MosaicEnv
    from mosaic_gym.rollout import episode_plan, play

    env = MosaicEnv(split="train", attack="none")
    checked = 0
    try:
        for spec in episode_plan(env.pool, [0], attack="random")[:80]:
            for name in ("reference", "comply"):
                record = play(env, make_baseline(name, seed=0), spec)
                grammar = Grammar(record.tools)
                for message in record.messages:
                    if message["role"] != "assistant":
                        continue
                    for body in re.findall(r"<tool_call>(.*?)</tool_call>", message["content"],
                                           re.S):
                        walk = grammar.advance(Walk(), body)
                        assert walk is not None and walk.phase == "done", body
                        checked += 1
    finally:
        env.close()
    assert checked > 100


@pytest.fixture(scope="module")
def random_tiny(tmp_path_factory):
    """One untrained tiny model for every processor test (building it takes seconds; the
    tests only load it)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from mosaic_gym.train.tiny import build_tiny

    return build_tiny(tmp_path_factory.mktemp("tiny") / "tiny", hidden_size=32, num_layers=1,
                      num_heads=2, num_kv_heads=1, intermediate_size=64, vocab_size=600)


def test_processor_forces_offered_tools_on_a_random_model(random_tiny) -> None:
    """Even an untrained model, once it opens a call, writes only calls the grammar allows."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import torch
    from transformers import LogitsProcessorList

    from mosaic_gym.agent.models.constrained import ToolCallLogitsProcessor

    folder = random_tiny
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    prompt = tokenizer("<think>go</think>\n<tool_call>", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt, prompt])
    torch.manual_seed(0)
    # the <tool_call> token counts as generated: the call starts there
    processor = ToolCallLogitsProcessor(tokenizer, [TOOLS, TOOLS[:1]], len(prompt) - 1)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                         max_new_tokens=60, logits_processor=LogitsProcessorList([processor]),
                         pad_token_id=tokenizer.pad_token_id)
    for row, tools in zip(out[:, len(prompt):].tolist(), [TOOLS, TOOLS[:1]], strict=True):
        text = tokenizer.decode(row, skip_special_tokens=False)
        body = text.split("</tool_call>")[0]
        walk = Grammar(tools).advance(Walk(), body)
        assert walk is not None, text  # every prefix it wrote is inside the grammar
        if "</tool_call>" in text:
            assert walk.phase == "done", text


@pytest.mark.parametrize("text", [
    call("read_file", path='/tmp/a "quoted" \\ file\nx\u00e9'),
    call("transfer_money", amount=12.5, to_account="DE12", memo="ü", urgent=False,
         tags=["a", "b"]),
    call("transfer_money", to_account="DE12", amount=-3e5, tags=[]),
    '{"name": "transfer_money", "arguments": {"memo": "\\u00e9", "amount": 1}}',
])
def test_every_prefix_has_a_shortest_completion_the_grammar_accepts(text: str) -> None:
    """What the budget-closing writes: from any point inside a call, a completion that
    makes a complete, allowed call (required arguments filled with their shortest value)."""
    grammar = Grammar(TOOLS)
    for i in range(len(text) + 1):
        walk = grammar.advance(Walk(), text[:i])
        if walk is None:  # the text itself is outside the grammar from here on
            assert i > 0 and grammar.advance(Walk(), text[:i - 1]) is not None
            break
        rest = grammar.finish(walk)
        assert rest is not None, text[:i]
        end = grammar.advance(walk, rest)
        assert end is not None and end.phase == "done", (text[:i], rest)
        body = json.loads(text[:i] + rest)
        schema = next(t["function"] for t in TOOLS if t["function"]["name"] == body["name"])
        assert set(schema["parameters"]["required"]) <= set(body["arguments"])
    whole = grammar.advance(Walk(), text)
    if whole is not None:  # a complete call needs nothing more
        assert grammar.finish(whole) == ""
    # from nothing: the shortest allowed call (the shorter tool, its one required argument)
    assert Grammar(TOOLS).finish(Walk()) == '{"name": "read_file", "arguments": {"path": ""}}'
    assert grammar.finish(None) is None


def test_processor_closes_a_call_before_the_budget_runs_out(random_tiny) -> None:
    """An untrained model never closes a string on its own; with the turn's budget the
    processor closes the call in time, so the turn parses (and without it, it does not)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

    from mosaic_gym.agent.models.constrained import ToolCallLogitsProcessor
    from mosaic_gym.protocol.format import parse_action

    folder = random_tiny
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    prompt = tokenizer("<think>go</think>\n<tool_call>", add_special_tokens=False)["input_ids"]
    rows = 6
    ids = torch.tensor([prompt] * rows)
    tools = [TOOLS if r % 2 else TOOLS[1:] for r in range(rows)]
    budget = 90

    def generate(with_budget: bool) -> list[str]:
        torch.manual_seed(0)
        processor = ToolCallLogitsProcessor(tokenizer, tools, len(prompt) - 1,
                                            budget=budget if with_budget else None)
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             do_sample=True, max_new_tokens=budget - 1,
                             logits_processor=LogitsProcessorList([processor]),
                             pad_token_id=tokenizer.pad_token_id)
        stops = {tokenizer.pad_token_id, tokenizer.eos_token_id}
        return [tokenizer.decode([t for t in r if t not in stops], skip_special_tokens=False)
                for r in out[:, len(prompt):].tolist()]

    closed = generate(True)
    for text, allowed in zip(closed, tools, strict=True):
        assert "</tool_call>" in text, text
        action = parse_action("<think>go</think>\n<tool_call>" + text.split("</tool_call>")[0]
                              + "</tool_call>")
        assert action.tool_call is not None, text
        assert action.tool_call.name in {t["function"]["name"] for t in allowed}
    # the same seed without the budget: the untrained model runs out inside the call
    cut = generate(False)
    assert sum("</tool_call>" not in text for text in cut) >= rows // 2, cut


NO_PARAMS = [*TOOLS, {"type": "function", "function": {
    "name": "list_emails", "parameters": {"type": "object", "properties": {}}}}]


def test_a_tool_without_parameters_takes_only_empty_arguments() -> None:
    grammar = Grammar(NO_PARAMS)
    walk = grammar.advance(Walk(), call("list_emails"))
    assert walk is not None and walk.phase == "done"
    assert grammar.advance(Walk(), '{"name": "list_emails", "arguments": {"') is None
    opened = grammar.advance(Walk(), '{"name": "list_emails", "arguments": {')
    assert grammar.finish(opened) == "}}"


def test_no_state_reached_by_any_walk_is_a_dead_end() -> None:
    """A random walk through the grammar (each character drawn among those it accepts) never
    reaches a state without a shortest completion: the budget-closing can always close.
    (Found by an evaluation: a parameterless tool's '{"' left no way out.)"""
    import random

    grammar = Grammar(NO_PARAMS)
    alphabet = sorted(set('{}[]",: -.0123456789eEtrufalsxyz\\' + "".join(
        grammar.names) + "".join(p for t in grammar.tools.values() for p in t.types)))
    draw = random.Random(0)
    for _ in range(400):
        walk = Walk()
        for _ in range(200):
            rest = grammar.finish(walk)
            assert rest is not None
            end = grammar.advance(walk, rest)
            assert end is not None and end.phase == "done"
            if walk.phase == "done":
                break
            options = [w for w in (grammar.step(walk, c) for c in alphabet) if w is not None]
            assert options, walk
            walk = draw.choice(options)


# -- copy-constrained values ----------------------------------------------------------------

CONTEXT_TEXT = 'Invoice for "Acme" GmbH\nIBAN DE44500105175407324931, amount 1738 EUR, m2'


def copying(**extra) -> Grammar:
    from mosaic_gym.agent.models.constrained import escaped

    return Grammar(TOOLS, copy={"transfer_money": ["to_account", "amount", "tags"]},
                   context=escaped(CONTEXT_TEXT), **extra)


@pytest.mark.parametrize(("text", "ok"), [
    (call("transfer_money", amount=1738, to_account="DE44500105175407324931"), True),
    # a free parameter (memo) takes anything; a copied one only what the context holds
    (call("transfer_money", amount=1738, to_account="DE44", memo="never seen"), True),
    (call("transfer_money", amount=1739, to_account="DE44500105175407324931"), False),
    (call("transfer_money", amount=17, to_account="DE44500105175407324932"), False),
    # escapes are compared in their JSON form: a quote and a newline of the context copy
    (call("transfer_money", amount=1, to_account='"Acme" GmbH\nIBAN'), True),
    (call("transfer_money", amount=1, to_account='"Acme"\nGmbH'), False),
    # string array items are each a piece of the context
    (call("transfer_money", amount=5, to_account="m2", tags=["Acme", "EUR, m2"]), True),
    (call("transfer_money", amount=5, to_account="m2", tags=["Acme", "USD"]), False),
    # the other tool's path is not in the table: free
    (call("read_file", path="/anything/at/all"), True),
])
def test_copied_values_are_substrings_of_the_context(text: str, ok: bool) -> None:
    walk = copying().advance(Walk(), text)
    assert (walk is not None and walk.phase == "done") is ok, text


def test_a_copied_value_can_always_be_closed() -> None:
    grammar = copying()
    walk = grammar.advance(Walk(), '{"name": "transfer_money", "arguments": {"to_account": "DE4')
    assert walk is not None
    rest = grammar.finish(walk)
    end = grammar.advance(walk, rest)
    assert end is not None and end.phase == "done"
    assert grammar.advance(walk, "X") is None  # "DE4X" is nowhere in the context


@pytest.mark.parametrize(("text", "ok"), [
    (call("transfer_money", amount=1738, to_account="DE44500105175407324931"), True),
    # a prefix or a piece of a word is no span: the truncations a weak model writes
    (call("transfer_money", amount=1738, to_account="DE44"), False),
    (call("transfer_money", amount=1738, to_account="mbH"), False),
    (call("transfer_money", amount=1738, to_account="GmbH"), True),
    # text that starts or ends with a non-word character is free at that end
    (call("transfer_money", amount=1, to_account='"Acme" GmbH\nIBAN'), True),
    (call("transfer_money", amount=1, to_account="1738 EUR, "), True),
    (call("transfer_money", amount=5, to_account="m2", tags=["Acme", "EUR, m2"]), True),
    (call("transfer_money", amount=5, to_account="m2", tags=["Acm"]), False),
    # numbers keep the substring rule (the teacher writes 2486.4 for "2486.40")
    (call("transfer_money", amount=173, to_account="m2"), True),
    (call("read_file", path="/any/path"), True),
])
def test_span_copies_are_whole_spans_of_the_context(text: str, ok: bool) -> None:
    walk = copying(spans=True).advance(Walk(), text)
    assert (walk is not None and walk.phase == "done") is ok, text


def test_a_span_copy_is_closed_at_the_end_of_its_word() -> None:
    grammar = copying(spans=True)
    head = '{"name": "transfer_money", "arguments": {"amount": 1, "to_account": "DE4'
    walk = grammar.advance(Walk(), head)
    assert walk is not None
    rest = grammar.finish(walk)
    assert rest is not None and rest.startswith('4500105175407324931"')
    end = grammar.advance(walk, rest)
    assert end is not None and end.phase == "done"
    assert json.loads(head + rest)["arguments"]["to_account"] == "DE44500105175407324931"
    assert grammar.advance(walk, '"') is None  # "DE4" itself cannot close
    # the two rules never share memoised states for the same context
    assert grammar.context_key != copying().context_key


def test_span_context_is_what_the_system_user_and_tools_said(random_tiny) -> None:
    pytest.importorskip("transformers")
    from transformers import AutoTokenizer

    from mosaic_gym.agent.models.constrained import said_to_model

    folder = random_tiny
    tokenizer = AutoTokenizer.from_pretrained(folder)
    text = ("<|im_start|>system\nbe careful<|im_end|>\n<|im_start|>user\nmail ann@x.org"
            "<|im_end|>\n<|im_start|>assistant\n<think>or bob@y.org</think><|im_end|>\n"
            "<|im_start|>tool\nsent to cat@z.org<|im_end|>\n<|im_start|>assistant\n")
    said = said_to_model(tokenizer, tokenizer(text, add_special_tokens=False)["input_ids"])
    assert "ann@x.org" in said and "cat@z.org" in said and "be careful" in said
    assert "bob@y.org" not in said and "<|im_start|>" not in said and "<think>" not in said
    plain = "no chat markers here"
    assert said_to_model(tokenizer, tokenizer(plain)["input_ids"]) == plain


def test_copy_table_keeps_what_the_teacher_copies_and_frees_what_it_composes() -> None:
    from mosaic_gym.agent.models.constrained import copy_table

    def record(value: str, command: str) -> dict:
        return {"messages": [
            {"role": "user", "content": f"pay the invoice, account {value}"},
            {"role": "assistant", "content": "", "tool_calls": [{"function": {
                "name": "transfer_money", "arguments": json.dumps({"to_account": value})}}]},
            {"role": "tool", "content": "ok"},
            {"role": "assistant", "content": "", "tool_calls": [{"function": {
                "name": "run_shell", "arguments": json.dumps({"command": command})}}]}]}

    records = [record(f"DE{i:04d}", f"ls /srv/{i}") for i in range(6)]
    assert copy_table(records) == {"transfer_money": ["to_account"]}
    assert copy_table(records[:4]) == {}  # too few values to decide (min_count 5)
    # one value of six composed: 5/6 = 0.83 < 0.85, so the parameter stays free
    composed = [*records[:5], record("DE9999", "x")]
    composed[-1]["messages"][0]["content"] = "pay the invoice"
    assert copy_table(composed) == {}


def test_decoding_mode_needs_the_table_and_names_the_fix(tmp_path) -> None:
    from mosaic_gym.agent.models.constrained import COPY_TABLE, decoding_mode

    assert decoding_mode(False) == (False, None)
    assert decoding_mode(True) == (True, None)
    with pytest.raises(FileNotFoundError, match="copy-table"):
        decoding_mode("copy", tmp_path)
    (tmp_path / COPY_TABLE).write_text('{"read_file": ["path"]}')
    assert decoding_mode("copy", tmp_path) == (True, {"read_file": ["path"]})
    assert not decoding_mode("copy", tmp_path)[1].spans
    grammar_on, table = decoding_mode("span", tmp_path)
    assert grammar_on and table == {"read_file": ["path"]} and table.spans
    (tmp_path / COPY_TABLE).write_text('["path"]')
    with pytest.raises(ValueError, match="expected"):
        decoding_mode("copy", tmp_path)
    with pytest.raises(ValueError, match="constrained must be"):
        decoding_mode("sometimes")


@pytest.mark.parametrize("spans", [False, True])
def test_processor_copies_values_from_the_prompt(random_tiny, spans: bool) -> None:
    """Sampling from an untrained model under ``copy``: every value of a copied parameter
    that the model writes is a piece of its prompt (and free ones are not held to it);
    under ``span`` a whole span of it."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

    from mosaic_gym.agent.models.constrained import (
        CopyTable,
        ToolCallLogitsProcessor,
        escaped,
        span_pattern,
    )

    folder = random_tiny
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    text = CONTEXT_TEXT + "\n<think>go</think>\n<tool_call>"
    prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
    rows, budget = 8, 80
    ids = torch.tensor([prompt] * rows)
    torch.manual_seed(0)
    processor = ToolCallLogitsProcessor(tokenizer, [TOOLS[1:]] * rows, len(prompt) - 1,
                                        budget=budget,
                                        copy=CopyTable({"transfer_money": ["to_account",
                                                                           "amount"]},
                                                       spans=spans))
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                         max_new_tokens=budget - 1,
                         logits_processor=LogitsProcessorList([processor]),
                         pad_token_id=tokenizer.pad_token_id)
    context = escaped(tokenizer.decode(prompt[:-1]))
    stops = {tokenizer.pad_token_id, tokenizer.eos_token_id}
    calls = 0
    for row in out[:, len(prompt):].tolist():
        body = tokenizer.decode([t for t in row if t not in stops], skip_special_tokens=False)
        assert "</tool_call>" in body, body
        arguments = json.loads(body.split("</tool_call>")[0])["arguments"]
        calls += 1
        assert escaped(arguments["to_account"]) in context, arguments
        if spans and arguments["to_account"]:
            assert re.search(span_pattern(escaped(arguments["to_account"]), whole=True),
                             context), arguments
        assert json.dumps(arguments["amount"]) in context, arguments
    assert calls == rows


def test_processor_closes_a_runaway_plan_with_half_the_budget_left(random_tiny) -> None:
    """An untrained model writes on inside ``<think>``; with the budget the plan closes
    when half of it is spent, and a turn that then opens a call closes it too."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

    from mosaic_gym.agent.models.constrained import ToolCallLogitsProcessor

    folder = random_tiny
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    prompt = tokenizer("user: go\n<think>", add_special_tokens=False)["input_ids"]
    rows, budget = 6, 40
    ids = torch.tensor([prompt] * rows)

    def generate(with_budget: bool) -> tuple[list[list[int]], Any]:
        torch.manual_seed(0)
        processor = ToolCallLogitsProcessor(tokenizer, [TOOLS] * rows, len(prompt) - 1,
                                            budget=budget if with_budget else None)
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             do_sample=True, max_new_tokens=budget - 1,
                             logits_processor=LogitsProcessorList([processor]),
                             pad_token_id=tokenizer.pad_token_id)
        return out[:, len(prompt):].tolist(), processor

    close = tokenizer.convert_tokens_to_ids("</think>")
    closed, processor = generate(True)
    for row in closed:
        assert close in row, tokenizer.decode(row)
        # generated tokens counted from the <think> token: at most half the budget is plan
        assert row.index(close) + 1 <= budget // 2 + 1, tokenizer.decode(row)
    assert processor.forced_blocks >= 1
    free, _ = generate(False)
    assert sum(close not in row for row in free) >= rows // 2
