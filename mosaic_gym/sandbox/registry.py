"""Sandbox backends by name: ``@register_sandbox("fake")`` and ``make_sandbox("fake")``.

A backend is a :class:`~mosaic_gym.sandbox.base.Sandbox` subclass registered under a name.
The two shipped ones are known here by module path and imported on first use, so asking for
``"fake"`` never imports the Docker SDK; a backend written elsewhere registers itself with the
decorator (in a module its user imports) or through the ``mosaic_gym.sandboxes`` entry-point
group (``name = "package.module:Class"``), and proves itself with
:mod:`mosaic_gym.sandbox.conformance`.

``make_sandbox`` raises :class:`~mosaic_gym.errors.SandboxError` for an unknown name (with the
closest known names) and for a backend whose optional dependency is missing (with the exact
``pip install`` line).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from importlib import import_module
from typing import Any, TypeVar

from mosaic_gym.errors import SandboxError
from mosaic_gym.sandbox.base import Sandbox

S = TypeVar("S", bound=type[Sandbox])

#: Shipped backends: name -> (module that registers it, the extra it needs or None).
BUILTIN: dict[str, tuple[str, str | None]] = {
    "fake": ("mosaic_gym.sandbox.fake.sandbox", None),
    "docker": ("mosaic_gym.sandbox.docker.sandbox", "docker"),
}
ENTRY_POINT_GROUP = "mosaic_gym.sandboxes"

_registry: dict[str, type[Sandbox]] = {}


def register_sandbox(name: str) -> Callable[[S], S]:
    """Class decorator: make a :class:`Sandbox` subclass available as ``name``.

    Raises ``TypeError`` for a class that is not a ``Sandbox`` and ``SandboxError`` when the
    name is taken by another class.
    """

    def register(cls: S) -> S:
        if not (isinstance(cls, type) and issubclass(cls, Sandbox)):
            raise TypeError(f"@register_sandbox({name!r}) needs a Sandbox subclass, got {cls!r}")
        known = _registry.get(name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise SandboxError(f"sandbox backend {name!r} is already registered "
                               f"({known.__module__}.{known.__qualname__})")
        _registry[name] = cls
        return cls

    return register


def sandbox_names() -> list[str]:
    """Every backend name that :func:`make_sandbox` knows (shipped, registered, entry points)."""
    return sorted(set(BUILTIN) | set(_registry) | set(_entry_points()))


def sandbox_class(name: str) -> type[Sandbox]:
    """The class registered as ``name``, importing its module when needed."""
    if name not in _registry:
        if name in BUILTIN:
            module, extra = BUILTIN[name]
            _import(module, name, extra)
        elif name in _entry_points():
            target = _entry_points()[name]
            module, _, attr = target.partition(":")
            cls = getattr(_import(module, name, None), attr)
            register_sandbox(name)(cls)
    if name not in _registry:
        close = difflib.get_close_matches(name, sandbox_names(), n=2)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise SandboxError(f"unknown sandbox backend {name!r}{hint} (known: "
                           f"{', '.join(sandbox_names())})")
    return _registry[name]


def make_sandbox(name: str, **kwargs: Any) -> Sandbox:
    """A new sandbox of backend ``name`` (keyword arguments go to its constructor)."""
    return sandbox_class(name)(**kwargs)


def _import(module: str, name: str, extra: str | None) -> Any:
    try:
        return import_module(module)
    except ImportError as exc:
        if extra is None:
            raise
        raise SandboxError(f"the {name!r} sandbox backend needs the {extra!r} extra "
                           f"({exc}): pip install 'mosaic-gym[{extra}]'") from exc


def _entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
