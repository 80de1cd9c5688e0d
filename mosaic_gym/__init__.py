"""mosaic-gym: a sandboxed tool-environment gym for agents that plan, check, then act or refuse.

``import mosaic_gym`` registers the Gymnasium ids ``mosaic/Injection-v0``,
``mosaic/Harmful-v0``, ``mosaic/Benign-v0``, ``mosaic/Privacy-v0``,
``mosaic/All-v0`` and ``mosaic/Scenario-v0``. It imports no torch,
transformers or docker.
"""

from __future__ import annotations

from mosaic_gym.envs.registration import ENV_IDS, register_envs

__version__ = "0.1.0"
__all__ = ["ENV_IDS", "__version__", "register_envs"]

register_envs()
