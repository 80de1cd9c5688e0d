"""Fixtures of the docker backend tests: a real engine, or one clear skip.

The first docker test of a session makes sure an engine answers: when none does,
it runs ``sandboxes/setup_engine.sh`` (which installs Debian's docker.io and
starts dockerd when this is root). If there is still no engine, every docker
test is skipped with the same reason.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SETUP_ENGINE = Path(__file__).resolve().parents[2] / "sandboxes" / "setup_engine.sh"
_ENGINE: dict[str, Any] = {}


def _engine_answers() -> bool:
    try:
        import docker
    except ImportError:
        return False
    try:
        docker.from_env(timeout=20).ping()
    except Exception:  # noqa: BLE001 - any failure means "no engine"
        return False
    return True


def _find_engine() -> str | None:
    """``None`` when an engine answers (starting one if need be), else why not."""
    try:
        import docker  # noqa: F401
    except ImportError:
        return "the docker Python package is not installed (pip install 'mosaic-gym[docker]')"
    if _engine_answers():
        return None
    try:
        result = subprocess.run(
            ["bash", str(SETUP_ENGINE)], capture_output=True, text=True, timeout=900
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"no Docker engine, and {SETUP_ENGINE.name} could not run: {error}"
    if _engine_answers():
        return None
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return (
        lines[-1] if lines else f"no Docker engine ({SETUP_ENGINE.name} exit {result.returncode})"
    )


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Skip (one reason for all) unless a Docker engine answers."""
    if "reason" not in _ENGINE:
        _ENGINE["reason"] = _find_engine()
    if _ENGINE["reason"] is not None:
        pytest.skip(_ENGINE["reason"])


@pytest.fixture(autouse=True)
def _needs_engine(docker_engine: None) -> None:
    """Every test in this folder needs the engine."""


@pytest.fixture(scope="session")
def docker_pool(docker_engine: None) -> Iterator[Any]:
    """A warm pool shared by the tests (each sandbox gets its own container).

    With egress when this machine can confine it (root installs the firewall);
    otherwise the egress tests fail with the reason, the others still run.
    """
    from mosaic_gym.sandbox.docker.pool import SandboxPool

    pool = SandboxPool(spares=2, egress=None).start()
    yield pool
    pool.close()
