"""Tools: docstrings become schemas; incomplete tools are refused; arguments are checked."""

from __future__ import annotations

import pytest

from mosaic_gym.errors import ToolError, ToolRegistrationError
from mosaic_gym.tools import make_tool, standard_tools


def documented(world, path: str, count: int = 2) -> str:
    """Do something.

    Args:
        path: The path.
        count: How many times,
            on two lines.
    """
    return path


def test_schema_from_docstring():
    tool = make_tool(documented, effect="read")
    params = tool.schema["function"]["parameters"]
    assert params["required"] == ["path"]
    assert params["properties"]["count"] == {"type": "integer", "default": 2,
                                             "description": "How many times, on two lines."}
    assert tool.schema["function"]["description"] == "Do something."


def test_missing_parameter_description_is_refused():
    def bad(world, path: str, other: str) -> str:
        """Do it.

        Args:
            path: The path.
        """
        return ""

    with pytest.raises(ToolRegistrationError, match="'other' has no description"):
        make_tool(bad, effect="read")


def test_missing_docstring_type_or_effect_is_refused():
    def nodoc(world, path: str) -> str:
        return ""

    def notype(world, path) -> str:
        """Do.

        Args:
            path: p.
        """
        return ""

    with pytest.raises(ToolRegistrationError, match="docstring"):
        make_tool(nodoc, effect="read")
    with pytest.raises(ToolRegistrationError, match="type hint"):
        make_tool(notype, effect="read")
    with pytest.raises(ToolRegistrationError, match="effect"):
        make_tool(documented, effect="sometimes")  # type: ignore[arg-type]


def test_every_standard_tool_is_complete():
    registry = standard_tools()
    assert "refusal_tool" in registry
    for schema in registry.schemas():
        function = schema["function"]
        assert function["description"]
        for prop in function["parameters"]["properties"].values():
            assert prop["description"]
    effects = {registry[name].effect for name in registry.names()}
    # No standard tool is a plain "write" since rewriting a contact field loses the old
    # value (update_contact is irreversible); the class stays for plug-in tools.
    assert effects == {"read", "irreversible", "egress", "terminal"}
    assert registry["refusal_tool"].effect == "terminal" and registry["refusal_tool"].terminal


def test_argument_validation():
    tool = standard_tools()["transfer_money"]
    with pytest.raises(ToolError, match="missing"):
        tool.validate({"from_account": "a"})
    with pytest.raises(ToolError, match="unknown argument"):
        tool.validate({"from_account": "a", "to_account": "b", "amount": 1, "bogus": 1})
    with pytest.raises(ToolError, match="number"):
        tool.validate({"from_account": "a", "to_account": "b", "amount": "lots"})
    assert tool.validate({"from_account": "a", "to_account": "b", "amount": "12.5"})[
        "amount"] == 12.5
