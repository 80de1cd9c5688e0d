"""docker-compose.yml stays in step with the CLI and the files it names."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main
import yaml

from mosaic_gym.cli import app

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def _defaults(text: str) -> str:
    """Apply ``${NAME:-default}`` the way compose does when NAME is unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)


def test_services_run_real_cli_commands_on_real_files():
    group = typer.main.get_command(app)
    services = _compose()["services"]
    assert {"sandbox-build", "vllm", "trainer"} <= set(services)
    checked = 0
    for name, service in services.items():
        command = [_defaults(part) for part in service.get("command", [])]
        if command[:1] != ["mosaic"]:
            continue
        node = group
        words = command[1:]
        while words and hasattr(node, "commands") and words[0] in node.commands:
            node = node.commands[words.pop(0)]
        assert not hasattr(node, "commands"), f"{name}: {command} is not a full CLI command"
        options = {opt for param in node.params for opt in getattr(param, "opts", [])}
        for index, word in enumerate(words):
            if word.startswith("--"):
                assert word in options, f"{name}: unknown option {word}"
                if word == "--recipe":
                    assert (ROOT / words[index + 1]).is_file(), f"{name}: missing recipe"
        checked += 1
    assert checked == 2


def test_sandbox_build_context_exists():
    assert (ROOT / "sandboxes" / "base" / "Dockerfile").is_file()
    app_service = _compose()["services"]["sandbox-build"]
    assert "busybox-static" in app_service["build"]["dockerfile_inline"]
