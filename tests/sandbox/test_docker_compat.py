"""Each private name of the Docker SDK that ``mosaic_gym.sandbox.docker.compat`` uses.

These need the SDK, not an engine; the ``_sock`` of an attached exec is checked against a
live engine in ``tests/docker/test_compat.py``.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

pytest.importorskip("docker")

from mosaic_gym.errors import DependencyVersionError  # noqa: E402
from mosaic_gym.sandbox.docker import compat  # noqa: E402

PAIRS = [(owner, name) for owner, names in compat.PRIVATE_NAMES.items() for name in names]
CALLED_WITH = {"_url": ["pathfmt"], "_post_json": ["url"], "_raise_for_status": ["response"]}


@pytest.mark.parametrize("owner, name", PAIRS, ids=[f"{o}.{n}" for o, n in PAIRS])
def test_private_name_exists_with_the_signature_used(owner, name):
    module, _, attr = owner.rpartition(".")
    method = getattr(getattr(importlib.import_module(module), attr), name, None)
    assert callable(method), f"{owner} has no {name}: update mosaic_gym/sandbox/docker/compat.py"
    parameters = [p for p in inspect.signature(method).parameters if p != "self"]
    assert parameters[: len(CALLED_WITH[name])] == CALLED_WITH[name], parameters


def test_raw_socket_unwraps_the_sdk_wrapper_and_passes_sockets_through():
    class Wrapper:
        _sock = object()

    assert compat.raw_socket(Wrapper()) is Wrapper._sock
    plain = object()
    assert compat.raw_socket(plain) is plain


def test_untested_major_is_refused_with_a_clear_message(monkeypatch):
    import docker

    monkeypatch.setattr(docker, "__version__", "8.0.0")
    with pytest.raises(DependencyVersionError, match="docker 8.0.0.*compat.py"):
        compat.check_version()
    monkeypatch.setattr(docker, "__version__", "7.1.0")
    compat.check_version()
