"""What one process shares for all its docker sandboxes: the engine client, the
images it checked, the egress network and sink, and the reaping of orphans.

This is infrastructure, like a connection pool: no file, container or random
state of an environment lives here. Containers are created and owned by pools
(:mod:`mosaic_gym.sandbox.docker.pool`). :func:`engine` returns the process's instance
(a forked child gets its own).

Every container carries labels (:data:`LABEL_SANDBOX`, the owner's pid, the
owner's start time and host, the creation time); :meth:`DockerEngine.reap_orphans`
removes the containers whose owner process is gone (a SIGKILLed trainer, say).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mosaic_gym.errors import SandboxError
from mosaic_gym.sandbox.docker import images
from mosaic_gym.sandbox.docker.egress import ensure_firewall, ensure_network, probe_port
from mosaic_gym.sandbox.docker.sink import EgressSink

LABEL_SANDBOX = "mosaic-gym.sandbox"
LABEL_OWNER_PID = "mosaic-gym.owner-pid"
LABEL_OWNER_START = "mosaic-gym.owner-start"
LABEL_OWNER_HOST = "mosaic-gym.owner-host"
LABEL_CREATED = "mosaic-gym.created"
LABEL_POOL = "mosaic-gym.pool"


def connect(timeout: float = 60) -> Any:
    """A docker client whose engine answers; ``SandboxError`` with the reason otherwise."""
    try:
        import docker  # noqa: PLC0415 - docker is imported by docker modules only
    except ImportError as error:
        raise SandboxError(
            "the docker backend needs the 'docker' package (extra: docker)"
        ) from error
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except Exception as error:  # the SDK raises several unrelated types here
        raise SandboxError(
            f"no Docker engine answers ({error}); run sandboxes/setup_engine.sh as root"
        ) from error
    return client


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), ``None`` if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None


def owner_is_alive(labels: dict[str, str]) -> bool:
    """Whether the process that created a container (by its labels) still runs here."""
    try:
        pid = int(labels.get(LABEL_OWNER_PID, ""))
    except ValueError:
        return False
    started = process_start_time(pid)
    if started is None:
        return False
    recorded = labels.get(LABEL_OWNER_START)
    return recorded is None or recorded == started


def host_id() -> str:
    """Names this machine in labels, so one engine shared by machines reaps only its own."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return f"{socket.gethostname()}/{handle.read().strip()}"
    except OSError:
        return socket.gethostname()


class RateLimiter:
    """At most ``rate`` acquisitions per second on average (bursts of ``burst``)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            time.sleep(wait)


@dataclass(frozen=True)
class Egress:
    """The egress network of this process and its sink."""

    network: str
    gateway: str
    sink: EgressSink


class DockerEngine:
    """The per-process docker state shared by pools (see the module docstring)."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client
        self._lock = threading.RLock()
        self._images: dict[str, str] = {}
        self._egress: Egress | None = None
        self._egress_error: str | None = None
        self._reaped = False
        self._removals: ThreadPoolExecutor | None = None
        #: Container creations are rate-limited for the whole process (the engine's sake).
        self.creations = RateLimiter(rate=float(os.environ.get("MOSAIC_DOCKER_CREATE_RATE", 8)),
                                     burst=4)  # fmt: skip
        self.pid = os.getpid()
        self.labels = {
            LABEL_SANDBOX: "1",
            LABEL_OWNER_PID: str(self.pid),
            LABEL_OWNER_START: process_start_time(self.pid) or "",
            LABEL_OWNER_HOST: host_id(),
        }

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = connect()
            return self._client

    def container_labels(self, pool: str) -> dict[str, str]:
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return {**self.labels, LABEL_CREATED: created, LABEL_POOL: pool}

    def image(self, variant: str) -> str:
        """The variant's image tag, built on first use in this process if missing or stale."""
        with self._lock:
            if variant not in self._images:
                self._images[variant] = images.ensure_image(self.client, variant)
            return self._images[variant]

    def egress(self, image: str) -> Egress:
        """The egress network and sink, proved confined with a probe container of ``image``.

        Raises ``SandboxError`` saying why when there can be none (no firewall and
        no way to install it, say): sandboxes never get an unconfined network.
        """
        with self._lock:
            if self._egress is None and self._egress_error is None:
                try:
                    network, gateway = ensure_network(self.client)
                    problem = ensure_firewall()
                    if problem is not None and os.geteuid() == 0:
                        raise SandboxError(f"egress firewall: {problem}")
                    self._prove_confined(image, network, gateway, problem)
                    self._egress = Egress(network, gateway, EgressSink(gateway))
                except SandboxError as error:
                    self._egress_error = str(error)
            if self._egress is None:
                raise SandboxError(f"egress capture is unavailable: {self._egress_error}")
            return self._egress

    def _prove_confined(self, image: str, network: str, gateway: str, why: str | None) -> None:
        """A container on the network must fail to reach a host port outside the sink's."""
        import docker.errors  # noqa: PLC0415

        listener = probe_port(gateway)
        try:
            port = str(listener.getsockname()[1])
            self.client.containers.run(
                image, ["nc", "-w", "3", gateway, port], network=network, user="1000:1000",
                cap_drop=["ALL"], security_opt=["no-new-privileges"], read_only=True,
                labels=self.container_labels("probe"), remove=True, stdin_open=False,
            )  # fmt: skip
        except docker.errors.ContainerError:
            return  # nc failed: the host refused it, as it must
        except docker.errors.APIError as error:
            raise SandboxError(f"cannot run the confinement probe: {error}") from error
        finally:
            listener.close()
        raise SandboxError(
            f"a container on {network} reached the host at {gateway}:{port}"
            + (f" ({why})" if why else "")
            + "; run once as root to install the firewall (see docker_egress.ensure_firewall)"
        )

    def remove_later(self, container: Any, *, delay: float = 0.0) -> None:
        """Remove a container in the background (the interpreter waits for it at exit)."""
        with self._lock:
            if self._removals is None:
                self._removals = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mosaic-rm")
            try:
                self._removals.submit(_remove_after, container, delay)
            except RuntimeError:  # interpreter shutting down: do it now
                remove_container(container)

    def reap_orphans(self) -> int:
        """Remove this machine's sandbox containers whose owner process is gone."""
        removed = 0
        containers = self.client.containers.list(
            all=True, filters={"label": f"{LABEL_SANDBOX}=1"}, ignore_removed=True
        )
        me = self.labels[LABEL_OWNER_HOST]
        for container in containers:
            labels = container.labels or {}
            if labels.get(LABEL_OWNER_HOST, me) != me or owner_is_alive(labels):
                continue
            remove_container(container)
            removed += 1
        return removed

    def reap_once(self) -> None:
        """Reap orphans the first time a pool of this process starts."""
        with self._lock:
            if not self._reaped:
                self._reaped = True
                self.reap_orphans()


def remove_container(container: Any) -> None:
    """Force-remove a container; already gone is fine."""
    import docker.errors  # noqa: PLC0415

    with contextlib.suppress(docker.errors.NotFound):
        try:
            container.remove(force=True)
        except docker.errors.APIError as error:
            if "already in progress" not in str(error):
                raise SandboxError(f"cannot remove container {container.name}: {error}") from error


def _remove_after(container: Any, delay: float) -> None:
    time.sleep(delay)
    remove_container(container)


_ENGINE: DockerEngine | None = None
_ENGINE_LOCK = threading.Lock()


def engine() -> DockerEngine:
    """This process's :class:`DockerEngine` (created on first use; a fork gets a new one)."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None or _ENGINE.pid != os.getpid():
            _ENGINE = DockerEngine()
        return _ENGINE
