"""Sandbox images, built locally from Debian packages (no registry is reachable).

A *variant* is a folder under ``sandboxes/`` holding a ``Dockerfile`` and an
optional ``rootfs/`` tree. The build context sent to the engine is assembled
here, in memory: the variant's files plus ``busybox-rootfs/`` (the host's
static busybox from the Debian package ``busybox-static`` and one symlink per
applet). The image is tagged ``mosaic-gym/sandbox-<variant>:<IMAGE_VERSION>``
and labelled with a digest of its context, so an edited recipe is rebuilt on
next use and an unchanged one never is.

The ``docker`` SDK is never imported here: callers pass a client.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import re
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mosaic_gym.errors import SandboxError

IMAGE_VERSION = "0.1"
IMAGE_PREFIX = "mosaic-gym/sandbox-"
#: Label keys carried by every image built here.
LABEL_IMAGE = "mosaic-gym.image"
LABEL_VARIANT = "mosaic-gym.variant"
LABEL_DIGEST = "mosaic-gym.context-sha256"

_VARIANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_BUSYBOX_DIR = "busybox-rootfs"

Progress = Callable[[str], None]


def _print_progress(message: str) -> None:
    print(f"mosaic-gym: {message}", file=sys.stderr, flush=True)


def image_name(variant: str = "base") -> str:
    """The tag of a variant's image, e.g. ``mosaic-gym/sandbox-base:0.1``."""
    _check_variant(variant)
    return f"{IMAGE_PREFIX}{variant}:{IMAGE_VERSION}"


def sandboxes_dir() -> Path:
    """Where the build contexts live: ``$MOSAIC_SANDBOXES_DIR`` or the repository's ``sandboxes/``.

    Raises ``SandboxError`` when neither exists (an installed wheel without the
    repository must point ``MOSAIC_SANDBOXES_DIR`` at a copy of ``sandboxes/``).
    """
    configured = os.environ.get("MOSAIC_SANDBOXES_DIR")
    candidates = [Path(configured)] if configured else []
    candidates.append(Path(__file__).resolve().parents[3] / "sandboxes")
    for candidate in candidates:
        if (candidate / "base" / "Dockerfile").is_file():
            return candidate
    raise SandboxError(
        "no sandbox build contexts found (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); set MOSAIC_SANDBOXES_DIR to the repository's sandboxes/ folder"
    )


def busybox_path() -> Path:
    """The static busybox the base image is made of (``$MOSAIC_BUSYBOX`` or ``/bin/busybox``)."""
    return Path(os.environ.get("MOSAIC_BUSYBOX", "/bin/busybox"))


def _check_variant(variant: str) -> None:
    if not _VARIANT_NAME.match(variant):
        raise SandboxError(f"invalid sandbox image variant {variant!r}")


@dataclass(frozen=True)
class BuildContext:
    """A variant's build context as a tar archive, and its digest."""

    variant: str
    tar: bytes
    digest: str
    #: Images of this project the Dockerfile starts ``FROM`` (built first).
    parents: tuple[str, ...]


def build_context(variant: str = "base") -> BuildContext:
    """Assemble the build context of ``variant`` (deterministic: same inputs, same bytes).

    Raises ``SandboxError`` if the variant folder or the static busybox is missing.
    """
    _check_variant(variant)
    folder = sandboxes_dir() / variant
    dockerfile = folder / "Dockerfile"
    if not dockerfile.is_file():
        raise SandboxError(f"unknown sandbox image variant {variant!r}: no {dockerfile}")
    recipe = dockerfile.read_text()
    parents = tuple(
        match.group(1)
        for match in re.finditer(r"(?im)^\s*FROM\s+(\S+)", recipe)
        if match.group(1).startswith(IMAGE_PREFIX)
    )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder).as_posix()
            _add_host_path(tar, path, relative)
        if not (folder / "rootfs").is_dir():
            _add_dir(tar, "rootfs", 0o755)
        if _BUSYBOX_DIR in recipe:
            _add_busybox_rootfs(tar)
    data = buffer.getvalue()
    return BuildContext(variant, data, hashlib.sha256(data).hexdigest(), parents)


def _tarinfo(name: str, kind: bytes, mode: int, uid: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid = info.gid = uid
    info.uname = info.gname = ""
    info.mtime = 0
    return info


def _add_dir(tar: tarfile.TarFile, name: str, mode: int, uid: int = 0) -> None:
    tar.addfile(_tarinfo(name, tarfile.DIRTYPE, mode, uid))


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = _tarinfo(name, tarfile.REGTYPE, mode)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _add_host_path(tar: tarfile.TarFile, path: Path, name: str) -> None:
    if path.is_symlink():
        info = _tarinfo(name, tarfile.SYMTYPE, 0o777)
        info.linkname = os.readlink(path)
        tar.addfile(info)
    elif path.is_dir():
        _add_dir(tar, name, 0o755)
    else:
        # Keep only the executable bit from the checkout: umasks differ between machines.
        mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
        _add_file(tar, name, path.read_bytes(), mode)


def _add_busybox_rootfs(tar: tarfile.TarFile) -> None:
    busybox = busybox_path()
    if not busybox.is_file():
        raise SandboxError(
            f"{busybox} is missing: install the Debian package busybox-static "
            "(sandboxes/setup_engine.sh does) to build the sandbox base image"
        )
    data = busybox.read_bytes()
    if b"GLIBC_" in data[:4096] or not data.startswith(b"\x7fELF"):
        raise SandboxError(f"{busybox} is not a static busybox (install busybox-static)")
    root = _BUSYBOX_DIR
    for directory, mode in [
        ("", 0o755),
        ("bin", 0o755),
        ("sbin", 0o755),
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("usr/local", 0o755),
        ("usr/local/bin", 0o755),
        ("etc", 0o755),
        ("root", 0o700),
        ("home", 0o755),
        ("tmp", 0o1777),
        ("var", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
    ]:
        _add_dir(tar, f"{root}/{directory}".rstrip("/"), mode)
    _add_dir(tar, f"{root}/home/user", 0o755, uid=1000)
    _add_file(tar, f"{root}/bin/busybox", data, 0o755)
    for applet in _applets(busybox):
        if applet == "bin/busybox" or "/" not in applet:
            continue
        info = _tarinfo(f"{root}/{applet}", tarfile.SYMTYPE, 0o777)
        info.linkname = "/bin/busybox"
        tar.addfile(info)


def _applets(busybox: Path) -> list[str]:
    import subprocess

    try:
        listing = subprocess.run(
            [str(busybox), "--list-full"], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise SandboxError(f"cannot list the applets of {busybox}: {error}") from error
    return sorted({line.strip() for line in listing.splitlines() if line.strip()})


def _find_image(client: Any, name: str) -> Any | None:
    import docker.errors  # noqa: PLC0415 - heavy import kept out of mosaic_gym's import

    try:
        return client.images.get(name)
    except docker.errors.ImageNotFound:
        return None


def image_is_current(client: Any, variant: str = "base") -> bool:
    """Whether the variant's image exists and was built from the current recipe."""
    image = _find_image(client, image_name(variant))
    if image is None:
        return False
    labels = image.labels or {}
    return labels.get(LABEL_DIGEST) == build_context(variant).digest


@contextlib.contextmanager
def _build_lock(variant: str) -> Iterator[None]:
    # Several processes (vector env workers) may want the image at once: build it once.
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"mosaic-gym-image-{variant}.lock"
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_image(
    client: Any,
    variant: str = "base",
    *,
    force: bool = False,
    progress: Progress | None = _print_progress,
) -> str:
    """Build the variant's image (and the project images it starts ``FROM``) and return its tag.

    Without ``force`` an image built from the same context is kept as is.
    Raises ``SandboxError`` when the context is missing or the engine's build fails.
    """
    context = build_context(variant)
    for parent in context.parents:
        parent_variant = parent.removeprefix(IMAGE_PREFIX).split(":", 1)[0]
        ensure_image(client, parent_variant, progress=progress)
    name = image_name(variant)
    with _build_lock(variant):
        image = _find_image(client, name)
        if not force and image is not None and image.labels.get(LABEL_DIGEST) == context.digest:
            return name
        if progress is not None:
            progress(f"building sandbox image {name} from {sandboxes_dir() / variant} ...")
        _run_build(client, context, name)
        if progress is not None:
            progress(f"built {name}")
    return name


def _run_build(client: Any, context: BuildContext, name: str) -> None:
    import docker.errors  # noqa: PLC0415

    labels = {LABEL_IMAGE: "1", LABEL_VARIANT: context.variant, LABEL_DIGEST: context.digest}
    try:
        stream = client.api.build(
            fileobj=io.BytesIO(context.tar),
            custom_context=True,
            tag=name,
            labels=labels,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        log: list[str] = []
        for chunk in stream:
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise SandboxError(f"building {name} failed: {detail}\n" + "".join(log[-20:]))
            if "stream" in chunk:
                log.append(chunk["stream"])
    except docker.errors.APIError as error:
        raise SandboxError(f"building {name} failed: {error}") from error


def ensure_image(
    client: Any, variant: str = "base", *, progress: Progress | None = _print_progress
) -> str:
    """The variant's image tag, building the image first if it is missing or stale."""
    if image_is_current(client, variant):
        return image_name(variant)
    if progress is not None:
        progress(f"sandbox image {image_name(variant)} is missing or stale; building it (once)")
    return build_image(client, variant, progress=progress)
