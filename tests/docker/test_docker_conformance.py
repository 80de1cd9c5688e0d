"""The shared sandbox conformance suite, run on the docker backend.

Known differences are listed here, never hidden: each is a strict xfail, so one
that disappears shows up as a failure.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from mosaic_gym.sandbox.conformance import SandboxConformance, SandboxFactory
from mosaic_gym.sandbox.docker.sandbox import DockerSandbox

pytestmark = pytest.mark.docker


class TestDockerConformance(SandboxConformance):
    KNOWN_DIFFERENCES: ClassVar[dict[str, str]] = {
        "test_missing_file_message": (
            "busybox quotes the path: \"cat: can't open '/no/such/file': No such file or "
            'directory" (the fake speaks coreutils)'
        ),
    }

    @pytest.fixture
    def sandbox_factory(self, docker_pool: Any) -> SandboxFactory:
        def factory(http: Any = None) -> DockerSandbox:
            return DockerSandbox(http=http, pool=docker_pool)

        return factory
