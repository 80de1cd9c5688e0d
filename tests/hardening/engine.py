"""Whether a Docker engine answers here (the docker variants of these tests skip if not)."""

from __future__ import annotations

import functools

import pytest


@functools.lru_cache(maxsize=1)
def docker_problem() -> str | None:
    try:
        import docker
    except ImportError:
        return "the docker Python package is not installed"
    try:
        docker.from_env(timeout=20).ping()
    except Exception as error:  # noqa: BLE001 - any failure means "no engine"
        return f"no Docker engine answers: {error}"
    return None


def backends() -> list[object]:
    """``fake`` always; ``docker`` marked, and skipped with the reason when no engine."""
    reason = docker_problem()
    return ["fake", pytest.param("docker", marks=[
        pytest.mark.docker, pytest.mark.skipif(reason is not None, reason=reason or "")])]
