"""docs/scenario-reference.md is generated from the code and kept up to date."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mosaic_gym.cli import app
from mosaic_gym.sandbox.fake.shell import supported_commands
from mosaic_gym.scenario_reference import event_targets, render
from mosaic_gym.tools import standard_tools

DOC = Path(__file__).resolve().parents[2] / "docs" / "scenario-reference.md"


def test_the_committed_reference_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "regenerate: python -m mosaic_gym.cli scenarios reference "
        "--out docs/scenario-reference.md")


def test_every_tool_and_argument_is_listed() -> None:
    text = render()
    for tool in standard_tools().values():
        assert f"| `{tool.name}` | {tool.effect} |" in text
        for argument in tool.parameters["properties"]:
            assert f"`{argument}` (" in text


def test_every_shell_command_is_listed() -> None:
    text = render()
    assert supported_commands()
    for name in supported_commands():
        assert f"`{name}`" in text


def test_event_targets_cover_the_prefixes_allowed_effects_match() -> None:
    forms = {form.split(":")[0] for _, form, _, _ in event_targets() if ":" in form}
    assert {"mail", "bank", "contact", "login", "mail-deleted", "vault", "web"} <= forms
    kinds = {kind for kind, _, _, _ in event_targets()}
    assert {"file_deleted", "file_overwritten", "permissions_changed", "mail_sent",
            "transfer", "credential_submitted", "contact_deleted"} <= kinds


def test_the_command_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "ref.md"
    result = CliRunner().invoke(app, ["scenarios", "reference", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == render()
