"""The attached exec has the private ``_sock`` that the persistent shell reads and writes."""

from __future__ import annotations

import socket

from mosaic_gym.sandbox.docker import compat
from mosaic_gym.sandbox.docker.sandbox import DockerSandbox


def test_attached_exec_exposes_its_socket(docker_pool):
    with DockerSandbox(pool=docker_pool) as sandbox:
        assert sandbox.exec("echo ready").stdout.strip() == "ready"
        session = sandbox._item.session
        assert session._holder is not session._socket
        assert compat.raw_socket(session._holder) is session._socket
        assert isinstance(session._socket, socket.socket)
