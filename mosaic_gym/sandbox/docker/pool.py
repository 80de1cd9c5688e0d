"""A warm pool of hardened sandbox containers, each with its shell already running.

A container is never handed out twice: :meth:`SandboxPool.acquire` gives a fresh
one (from the spares, or made on the spot), and :meth:`SandboxPool.discard`
removes it in the background. What makes resets cheap is the sandbox's own
verified in-place wipe (:mod:`mosaic_gym.sandbox.docker.sandbox`); the pool makes
*creation* cheap (a spare is ready in microseconds instead of ~0.2 s) and is
where a sandbox takes a replacement when a reset cannot be verified.

Pools are explicit objects: sandboxes share one only when given the same pool.
Every container gets the hardening of :func:`container_options` and labels for
reaping; starting a pool first removes the containers that dead processes left
behind. Creation is rate-limited per process (``MOSAIC_DOCKER_CREATE_RATE``/s).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any

from mosaic_gym.errors import SandboxError
from mosaic_gym.sandbox.base import HOME
from mosaic_gym.sandbox.docker.engine import DockerEngine, Egress, engine, remove_container
from mosaic_gym.sandbox.docker.shell import ShellSession

#: Writable tmpfs mounts (the "work area"); everything else is read-only.
WORK_ROOTS: tuple[str, ...] = (HOME, "/tmp", "/etc", "/opt", "/srv", "/var")
#: Files the engine mounts into ``/etc``; they belong to Docker, not to the world.
ENGINE_FILES = frozenset({"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"})
#: The idle process (tini and ``sleep``) runs as nobody: the sandbox user cannot kill it.
IDLE_USER = "65534:65534"
#: Background work (refilling spares, removing containers) waits this long after a
#: hand-out, so it does not compete for the CPU with the caller's first requests.
BACKGROUND_DELAY_S = 0.25


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one sandbox container."""

    memory: str = "512m"
    pids: int = 256
    cpus: float = 1.0
    #: Size of the ``/home/user`` and ``/tmp`` mounts; the other roots get ``root_size``.
    home_size: str = "256m"
    root_size: str = "64m"
    open_files: int = 1024
    #: Inodes (files and directories) of the ``/home/user`` and ``/tmp`` mounts, and of
    #: each other root: every snapshot lists them all, so their number is bounded like
    #: the fake backend's tree (150,000 files made each later step take seconds).
    home_inodes: int = 10_000
    root_inodes: int = 2_000


def container_options(
    image: str, labels: dict[str, str], limits: SandboxLimits, egress: Egress | None
) -> dict[str, Any]:
    """The ``containers.run`` arguments of a hardened sandbox container."""
    import docker.types  # noqa: PLC0415

    tmpfs = {}
    for root in WORK_ROOTS:
        big = root in (HOME, "/tmp")
        size = limits.home_size if big else limits.root_size
        inodes = limits.home_inodes if big else limits.root_inodes
        owner = "mode=1777" if root == "/tmp" else "mode=0755,uid=1000,gid=1000"
        tmpfs[root] = f"rw,nosuid,nodev,exec,size={size},nr_inodes={inodes},{owner}"
    # Shadow the engine's writable /dev/shm and /dev/mqueue: no write outside the work area.
    tmpfs["/dev/shm"] = "ro,nosuid,nodev,noexec,size=4k"
    tmpfs["/dev/mqueue"] = "ro,nosuid,nodev,noexec,size=4k"
    options: dict[str, Any] = {
        "image": image,
        "command": ["sleep", "2147483647"],
        "init": True,
        "user": IDLE_USER,
        "working_dir": HOME,
        "hostname": "sandbox",
        "detach": True,
        "labels": labels,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "tmpfs": tmpfs,
        "pids_limit": limits.pids,
        "mem_limit": limits.memory,
        "memswap_limit": limits.memory,
        "nano_cpus": int(limits.cpus * 1e9),
        "oom_score_adj": 500,
        "ulimits": [
            docker.types.Ulimit(name="nofile", soft=limits.open_files, hard=limits.open_files),
            docker.types.Ulimit(name="core", soft=0, hard=0),
        ],
        "ipc_mode": "private",
        "stop_signal": "SIGKILL",
    }
    if egress is None:
        options["network_mode"] = "none"
    else:
        options["network"] = egress.network
        # Name lookups are refused at once by the host firewall: no DNS leaves.
        options["dns"] = [egress.gateway]
        options["dns_opt"] = ["timeout:1", "attempts:1"]
    return options


@dataclass
class PooledContainer:
    """A running container and its shell session."""

    container: Any
    session: ShellSession
    #: The container's address on the egress network (``None`` without egress).
    address: str | None


class SandboxPool:
    """Hardened containers of one image variant, ``spares`` of them kept warm.

    ``egress=True`` puts containers on the egress network (what sandboxes with an
    HTTP handler need; ``start`` raises ``SandboxError`` when it is unavailable),
    ``egress=False`` gives them no network at all, and ``None`` takes egress when
    this machine can confine it and no network otherwise (see :attr:`egress_problem`).
    """

    def __init__(
        self,
        *,
        spares: int = 0,
        variant: str = "base",
        egress: bool | None = True,
        limits: SandboxLimits | None = None,
        engine_: DockerEngine | None = None,
    ) -> None:
        self.spares = spares
        self.variant = variant
        self._egress_wanted = egress
        #: The egress network and sink (``None``: containers have no network).
        self.egress: Egress | None = None
        #: Why there is no egress, when it was wanted or optional and could not be had.
        self.egress_problem: str | None = None if egress is not False else "disabled"
        self.limits = limits or SandboxLimits()
        self.name = f"pool-{uuid.uuid4().hex[:8]}"
        self._engine = engine_
        self._ready: deque[PooledContainer] = deque()
        self._owned: dict[str, Any] = {}
        self._cond = threading.Condition()
        self._filling = 0
        self._started = False
        self._closed = False
        #: Snapshot of an empty world in this image (set by the first sandbox).
        self.baseline: dict[str, Any] | None = None
        self._finalizer = weakref.finalize(self, _remove_all, self._owned)

    @property
    def egress_enabled(self) -> bool:
        """Whether containers sit on the egress network (known once started)."""
        return self.egress is not None

    @property
    def engine(self) -> DockerEngine:
        if self._engine is None:
            self._engine = engine()
        return self._engine

    def start(self) -> SandboxPool:
        """Check the image, egress and orphans once; begin filling spares. Idempotent."""
        with self._cond:
            if self._started:
                return self
            if self._closed:
                raise SandboxError("the sandbox pool is closed")
            self._started = True
        try:
            self.image = self.engine.image(self.variant)
            if self._egress_wanted is not False:
                try:
                    self.egress = self.engine.egress(self.image)
                except SandboxError as problem:
                    if self._egress_wanted:
                        raise
                    self.egress_problem = str(problem)
            self.engine.reap_once()
        except BaseException:
            with self._cond:
                self._started = False
            raise
        self._refill()
        return self

    def acquire(self, timeout: float = 120) -> PooledContainer:
        """A fresh container with a running shell, never handed out before.

        Raises ``SandboxError`` when the pool is closed or no container can be made.
        """
        if self._closed:
            raise SandboxError("the sandbox pool is closed")
        self.start()
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._ready and self._filling and time.monotonic() < deadline:
                self._cond.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            item = self._ready.popleft() if self._ready else None
        if item is None:
            item = self._create()
        self._refill(delay=BACKGROUND_DELAY_S)
        return item

    def ready_count(self) -> int:
        """How many warm containers wait to be handed out."""
        with self._cond:
            return len(self._ready)

    def discard(self, item: PooledContainer) -> None:
        """Remove a container (in the background); it is never handed out again."""
        item.session.close()
        with self._cond:
            self._owned.pop(item.container.id, None)
        self.engine.remove_later(item.container, delay=BACKGROUND_DELAY_S)

    def close(self) -> None:
        """Remove the spares (in the background); later ``acquire`` calls fail. Idempotent.

        Containers handed out stay with their sandboxes, which discard them on close.
        """
        with self._cond:
            self._closed = True
            ready, self._ready = list(self._ready), deque()
        for item in ready:
            self.discard(item)

    def __enter__(self) -> SandboxPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _refill(self, delay: float = 0.0) -> None:
        with self._cond:
            missing = self.spares - len(self._ready) - self._filling
            if self._closed or missing <= 0:
                return
            self._filling += missing
        for _ in range(missing):
            threading.Thread(
                target=self._fill_one, args=(delay,), name="mosaic-pool-fill", daemon=True
            ).start()

    def _fill_one(self, delay: float) -> None:
        item: PooledContainer | None = None
        time.sleep(delay)
        try:
            item = self._create()
        except SandboxError:
            pass  # acquire() creates synchronously and reports the error
        finally:
            with self._cond:
                self._filling -= 1
                if item is not None and not self._closed:
                    self._ready.append(item)
                self._cond.notify_all()
        if item is not None and self._closed:
            self.discard(item)

    def _create(self) -> PooledContainer:
        import docker.errors  # noqa: PLC0415

        engine_ = self.engine
        engine_.creations.acquire()
        labels = engine_.container_labels(self.name)
        options = container_options(self.image, labels, self.limits, self.egress)
        try:
            container = engine_.client.containers.run(**options)
        except docker.errors.APIError as error:
            raise SandboxError(f"cannot start a sandbox container: {error}") from error
        with self._cond:
            self._owned[container.id] = container
        try:
            address = None
            if self.egress is not None:
                container.reload()
                networks = container.attrs["NetworkSettings"]["Networks"]
                address = networks[self.egress.network]["IPAddress"]
            session = ShellSession(engine_.client.api, container.id)
            session.start()
            item = PooledContainer(container, session, address)
        except BaseException:
            with self._cond:
                self._owned.pop(container.id, None)
            remove_container(container)
            raise
        return item


def _remove_all(owned: dict[str, Any]) -> None:
    """Last resort (garbage collection, interpreter exit): remove what is still owned."""
    for container in list(owned.values()):
        with contextlib.suppress(Exception):
            remove_container(container)
    owned.clear()
