"""The in-process ``fake`` backend: a pyfakefs tree per instance and a small shell interpreter.

:class:`FakeSandbox` (``sandbox.py``) implements the contract over the file primitives of
``files.py``; ``shell/`` interprets the common shell commands over those primitives.
"""

from __future__ import annotations

from mosaic_gym.sandbox.fake.sandbox import FakeSandbox

__all__ = ["FakeSandbox"]
