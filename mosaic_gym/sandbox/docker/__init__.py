"""The ``docker`` backend: a real shell in a hardened container (the ``docker`` extra).

:class:`DockerSandbox` (``sandbox.py``) over a warm pool (``pool.py``) of containers built from
local images (``images.py``), one persistent shell session each (``shell.py``), egress only to
a recording sink (``sink.py``, ``egress.py``), the engine (``engine.py``), and every use of the
Docker SDK's private API in ``compat.py``. The SDK itself is imported only when a sandbox is
made, never by ``import mosaic_gym``.
"""

from __future__ import annotations

from mosaic_gym.sandbox.docker.sandbox import DockerSandbox

__all__ = ["DockerSandbox"]
