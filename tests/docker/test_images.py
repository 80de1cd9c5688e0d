"""The sandbox image is built here, from Debian's busybox-static, and rebuilt only on change."""

from __future__ import annotations

import pytest

from mosaic_gym.sandbox import images
from mosaic_gym.sandbox.docker_cli import build
from mosaic_gym.sandbox.docker_engine import connect

pytestmark = pytest.mark.docker


def test_build_context_is_deterministic() -> None:
    first, second = images.build_context("base"), images.build_context("base")
    assert first.tar == second.tar and first.digest == second.digest


def test_build_keeps_a_current_image_and_labels_it() -> None:
    client = connect()
    name = build("base")
    assert name == images.image_name("base") == "mosaic-gym/sandbox-base:0.1"
    image = client.images.get(name)
    assert image.labels[images.LABEL_DIGEST] == images.build_context("base").digest
    assert build("base") == name and client.images.get(name).id == image.id  # no rebuild
    assert images.image_is_current(client, "base")


def test_image_holds_busybox_and_nothing_else() -> None:
    client = connect()
    output = client.containers.run(
        images.ensure_image(client), ["sh", "-c", "readlink /bin/ls; ls /usr/lib 2>&1; id -un"],
        network_mode="none", remove=True, cap_drop=["ALL"],
    )  # fmt: skip
    lines = output.decode().split()
    assert lines[0] == "/bin/busybox" and "user" in lines


def test_unknown_variant_is_a_sandbox_error() -> None:
    from mosaic_gym.errors import SandboxError

    with pytest.raises(SandboxError):
        images.build_context("no-such-variant")
    with pytest.raises(SandboxError):
        images.image_name("../evil")
