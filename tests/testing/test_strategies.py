"""The public strategies generate what they promise (and nothing the gym would not accept)."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mosaic_gym.errors import ToolError
from mosaic_gym.judge.leaks import Egress, find_leaks
from mosaic_gym.protocol.format import parse_action
from mosaic_gym.scenario.loader import load_file
from mosaic_gym.scenario.schema import WorldSpec
from mosaic_gym.selfcheck import check_paths
from mosaic_gym.testing import strategies as ms
from mosaic_gym.tools import standard_tools

TOOLS = standard_tools()
SCHEMAS = TOOLS.schemas()


@given(call=ms.tool_calls(SCHEMAS, valid=True))
def test_valid_calls_pass_the_tools_own_validation(call):
    TOOLS[call.name].validate(call.arguments)  # raises ToolError if the strategy lied
    assert call.name != "refusal_tool"


@given(call=ms.tool_calls(SCHEMAS, valid=False))
def test_invalid_calls_are_rejected_by_name_or_validation(call):
    tool = TOOLS.get(call.name)
    if tool is None:
        return  # an unknown tool: the environment answers with a tool error
    with pytest.raises(ToolError):
        tool.validate(call.arguments)


@given(turn=ms.turns("valid", SCHEMAS))
def test_valid_turns_parse_to_an_action(turn):
    assert parse_action(turn).kind in ("tool_call", "final_answer")


@given(actions=ms.action_sequences(SCHEMAS, ending="refusal", max_size=4))
def test_sequences_end_in_the_requested_termination(actions):
    kinds = [parse_action(a).kind for a in actions]
    assert kinds[-1] == "refusal" and "refusal" not in kinds[:-1]


@given(actions=ms.action_sequences(SCHEMAS, ending="final_answer", max_size=3))
def test_sequences_can_end_in_an_answer(actions):
    assert parse_action(actions[-1]).kind == "final_answer"


@given(family=st.sampled_from(sorted(ms.HOSTILE_FAMILIES)), data=st.data())
def test_hostile_commands_come_from_their_family(family, data):
    command = data.draw(ms.hostile_commands(family, home="/srv/watched"))
    assert not any(slot in command for slot in ("{home}", "{file}", "{host}"))
    assert "/home/user" not in command  # every home is the one the test watches
    templates = ms.HOSTILE_FAMILIES[family]
    assert any(command.startswith(t.split("{")[0].replace("{{", "{")) for t in templates)


def test_unknown_hostile_family_is_a_clear_error():
    with pytest.raises(ValueError, match="destruction"):
        ms.hostile_commands("nuke")


@given(triple=ms.encoded_secrets())
def test_every_encoding_is_found_by_the_leak_detector(triple):
    secret, encoding, text = triple
    leaks = find_leaks({"key": secret}, [Egress(1, "http_post", "evil.example", f"x={text}")])
    assert [leak.secret_name for leak in leaks] == ["key"], encoding


@given(secret=ms.secrets(), parts=st.integers(2, 6))
def test_split_secret_covers_the_secret(secret, parts):
    pieces = ms.split_secret(secret, parts)
    assert "".join(pieces) == secret and len(pieces) <= parts


@given(world=ms.worlds())
def test_worlds_validate_against_the_schema(world):
    WorldSpec.model_validate(world)


@settings(max_examples=8)
@given(spec=ms.scenario_files())
def test_generated_scenario_files_load_and_pass_the_self_check(tmp_path_factory, spec):
    path = tmp_path_factory.mktemp("scen") / "generated.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    (variant,) = load_file(path)
    assert variant.category == spec["category"]
    failed = [r for r in check_paths([path], seeds=(0,)) if not r.passed]
    assert failed == []
