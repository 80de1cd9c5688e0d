"""A user's own policy, named ``module:factory`` (``mosaic eval --policy mypkg.agents:make``).

The module is imported as Python would from the working directory (which is put on
``sys.path`` first, as ``python -m`` does), the attribute after the colon is looked up (dots
walk into it: ``mod:Class.build``) and called with no argument; what it returns must have the
policy contract's ``act`` and ``reset`` (:class:`mosaic_gym.agent.baselines.Policy`). A class
can be named as the factory. Every way this can go wrong (no such module, an import that
fails inside the user's code, no such attribute, a factory that raises or returns something
that is not a policy) raises :class:`~mosaic_gym.errors.UsageError` with what was looked for,
so the CLI reports one line instead of a traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import Any

from mosaic_gym.errors import UsageError


def is_policy_spec(name: str) -> bool:
    """Whether ``name`` has the ``module:factory`` form (and is not a Windows path)."""
    module, sep, attribute = name.partition(":")
    return bool(sep and module and attribute) and not name.endswith((".yaml", ".yml")) \
        and "/" not in module and "\\" not in module


def load_user_policy(spec: str) -> Any:
    """Import ``module`` and call ``factory`` of ``spec`` ("module:factory"); check the result."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UsageError(f"--policy {spec!r}: expected module:factory")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise UsageError(f"--policy {spec!r}: no module named {module_name!r} (run from the "
                             "folder that holds it, or install it)") from None
        raise UsageError(f"--policy {spec!r}: importing {module_name} failed: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module, anything can happen
        raise UsageError(f"--policy {spec!r}: importing {module_name} failed: "
                         f"{type(exc).__name__}: {exc}") from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise UsageError(f"--policy {spec!r}: {module_name} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise UsageError(f"--policy {spec!r}: {attribute} is not callable")
    try:
        policy = target()
    except Exception as exc:  # noqa: BLE001 - the user's factory
        raise UsageError(f"--policy {spec!r}: the factory raised "
                         f"{type(exc).__name__}: {exc}") from None
    missing = [name for name in ("act", "reset") if not callable(getattr(policy, name, None))]
    if missing:
        raise UsageError(f"--policy {spec!r}: the factory returned {type(policy).__name__}, "
                         f"which has no {' or '.join(missing)} method (see the Policy protocol "
                         "in mosaic_gym.agent.baselines)")
    if not getattr(policy, "name", None):
        with contextlib.suppress(AttributeError):  # a slotted or frozen policy keeps none
            policy.name = spec
    return policy
