"""The docker sandbox backend: a real busybox shell in a hardened container.

Hardening (see :func:`mosaic_gym.sandbox.docker.pool.container_options`): all capabilities
dropped, ``no-new-privileges``, read-only root file system with tmpfs work roots
(:data:`~mosaic_gym.sandbox.docker.pool.WORK_ROOTS`), pid, memory and CPU limits, agent
commands as uid 1000, no network but the egress sink
(:mod:`mosaic_gym.sandbox.docker.egress`). Commands run through one persistent
shell per container (:mod:`mosaic_gym.sandbox.docker.shell`) with a per-command
timeout and output cap; nothing a command starts outlives it.

``reset`` wipes the work roots in place, lays the world down again and *verifies*
the result: the snapshot must equal the one the specs imply, and no process of
the sandbox user may survive. When that cannot be shown, the container is
discarded and a fresh one from the pool takes its place.

The ``docker`` SDK is imported lazily (by this backend's modules only), never by
``import mosaic_gym``.
"""

from __future__ import annotations

import contextlib
import secrets
import shlex
import threading
import time
from collections.abc import Iterator, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

from mosaic_gym.errors import SandboxError
from mosaic_gym.sandbox.base import (
    DEFAULT_OUTPUT_CAP,
    DEFAULT_TIMEOUT_S,
    ExecResult,
    FileSpec,
    FileState,
    HttpHandler,
    Sandbox,
    Snapshot,
)
from mosaic_gym.sandbox.docker.compat import set_pids_limit
from mosaic_gym.sandbox.docker.files import DockerFileOperations
from mosaic_gym.sandbox.docker.pool import (
    ENGINE_FILES,
    WORK_ROOTS,
    PooledContainer,
    SandboxLimits,
    SandboxPool,
)
from mosaic_gym.sandbox.docker.shell import KILL_ALL, SANDBOX_USER, Reply, SessionLost
from mosaic_gym.sandbox.docker.world import (
    WorldPlan,
    decode_capped,
    describe_mismatch,
    materialise_script,
    parse_snapshot,
    plan_world,
)
from mosaic_gym.sandbox.registry import register_sandbox

#: Seconds a harness request (file operation, snapshot, reset) may take.
HARNESS_TIMEOUT_S = 60.0
#: Extra seconds past a command's timeout before the watchdog is presumed dead.
WATCHDOG_GRACE_S = 3.0


@register_sandbox("docker")
class DockerSandbox(DockerFileOperations, Sandbox):
    """A sandbox whose file system and shell live in a hardened Docker container.

    ``pool``: where containers come from (shared only when you pass the same pool);
    by default a private pool without spares. ``variant`` names the image
    (``sandboxes/<variant>/``) of that private pool. Relative paths given to the
    file methods resolve against :data:`HOME`, as on the fake backend.

    Raises ``SandboxError`` when no engine answers, or when ``http`` is given and
    egress capture is unavailable (fail closed: never an unconfined network).
    """

    backend: ClassVar[str] = "docker"

    def __init__(
        self,
        http: HttpHandler | None = None,
        *,
        pool: SandboxPool | None = None,
        variant: str = "base",
        limits: SandboxLimits | None = None,
    ) -> None:
        self._item: PooledContainer | None = None
        super().__init__(http)
        self._own_pool = pool is None
        if pool is None:
            # Egress if this machine can confine it (a web may be attached later).
            pool = SandboxPool(variant=variant, egress=True if http else None, limits=limits)
        self._pool = pool
        self._lock = threading.RLock()
        self._closed = False
        self._plan = plan_world((), WORK_ROOTS)
        try:
            pool.start()
            self._adopt(pool.acquire())
            self.setup(())
        except BaseException:
            self.close()
            raise

    @property
    def http(self) -> HttpHandler | None:
        """The world's web service; shell egress goes to it (it may be set at any time).

        Setting a handler raises ``SandboxError`` when this sandbox's pool has no
        egress network (see :attr:`SandboxPool.egress_problem`).
        """
        return self._http

    @http.setter
    def http(self, handler: HttpHandler | None) -> None:
        self._http = handler
        if self._item is not None:
            with self._lock:
                self._route(self._item)

    # -- lifecycle -----------------------------------------------------
    def setup(self, files: Sequence[FileSpec], *, network: HttpHandler | None = None) -> None:
        """Replace every work root with ``files`` (parents created 0o755), verified;
        ``network`` as in :meth:`Sandbox.setup` (raises ``SandboxError`` as :attr:`http` does).

        Raises ValueError (relative path), NotADirectoryError / IsADirectoryError
        (specs contradict each other), PermissionError (a path outside the work
        roots, which are the only writable places); the previous world then stays.
        """
        if network is not None:
            self.http = network
        plan = plan_world(files, WORK_ROOTS)
        with self._lock:
            self._check_open()
            self._plan = plan
            self._restore(plan, allow_swap=False)

    def reset(self) -> None:
        """Return to the last ``setup``: wipe, re-materialise, verify (else a fresh container)."""
        with self._lock:
            self._check_open()
            self._restore(self._plan, allow_swap=True)

    def replace_container(self) -> None:
        """Continue in a fresh container from the pool, with the world of the last ``setup``.

        What ``reset`` falls back to when it cannot verify the old container.
        """
        with self._lock:
            self._check_open()
            self._swap()
            self._restore(self._plan, allow_swap=False)

    def close(self) -> None:
        """Discard the container (removed in the background). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            item, self._item = self._item, None
        if item is not None:
            self._release(item)
        if self._own_pool:
            self._pool.close()

    def __enter__(self) -> DockerSandbox:
        return self

    # -- shell ---------------------------------------------------------
    def exec(
        self,
        command: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        output_cap: int = DEFAULT_OUTPUT_CAP,
    ) -> ExecResult:
        """Run ``command`` with busybox ``sh`` in :data:`HOME` (a fresh shell each time).

        A timed-out command reports exit status 124 and ``timed_out``; output past
        ``output_cap`` bytes per stream is dropped and ``truncated`` is set. Raises
        ``SandboxError`` if the container is lost or the world's web service failed
        on a request the command made.
        """
        if "\x00" in command:
            return ExecResult(2, "", "sh: the command contains a NUL byte\n")
        cap = max(0, int(output_cap))
        timeout = max(0.001, float(timeout))
        script = f"__mosaic_run {cap + 1} {timeout:.3f} {shlex.quote(command)}"
        with self._lock:
            item = self._session_ready()
            started = time.monotonic()
            try:
                reply = item.session.call(script, timeout=timeout + WATCHDOG_GRACE_S)
                out, err = reply.stdout, reply.stderr
                # The watchdog SIGKILLs the command's group at the deadline.
                timed_out = reply.status == 137 and time.monotonic() - started >= timeout
                status = 124 if timed_out else reply.status
            except SessionLost as lost:
                # Leftovers held the pipes past the deadline, or the command killed the shell.
                timed_out = time.monotonic() - started >= timeout or not lost.eof
                status = 124 if timed_out else 137
                out, err = lost.stdout, lost.stderr
                self._revive(item, hard=True)
            self._raise_web_errors(item)
        stdout, cut_out = decode_capped(out, cap)
        stderr, cut_err = decode_capped(err, cap)
        return ExecResult(status, stdout, stderr, timed_out, cut_out or cut_err)

    # -- state ---------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """Every path under the work roots (and ``/home``), hashed inside the container."""
        token = secrets.token_hex(8)
        roots = " ".join(shlex.quote(root) for root in WORK_ROOTS)
        with self._lock:
            reply = self._harness(f"__mosaic_snapshot {token} {roots}")
            if reply.status != 0:
                raise SandboxError(f"snapshot failed: {reply.stderr.decode(errors='replace')}")
            return MappingProxyType(self._parse(reply, token))

    @property
    def version(self) -> int | None:
        return None  # a real shell can change anything: always snapshot

    @property
    def container(self) -> Any:
        """The current ``docker`` container object (for inspection; it may be replaced)."""
        self._check_open()
        assert self._item is not None
        return self._item.container

    @property
    def address(self) -> str | None:
        """The container's address on the egress network (``None`` without egress)."""
        self._check_open()
        assert self._item is not None
        return self._item.address

    # -- internals -------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed or self._item is None:
            raise SandboxError("the docker sandbox is closed")

    def _adopt(self, item: PooledContainer) -> None:
        """Make ``item`` this sandbox's container: route its egress, set its shell up."""
        self._item = item
        self._route(item)

    def _route(self, item: PooledContainer) -> None:
        """Send the container's egress to :attr:`http`, and point its shell at the sink."""
        egress = self._pool.egress
        if self._http is not None and egress is None:
            raise SandboxError(
                f"this sandbox has a web but no egress network: {self._pool.egress_problem}"
            )
        if egress is not None and item.address is not None:
            egress.sink.register(item.address, self._http)
        self._configure(item)

    def _configure(self, item: PooledContainer) -> None:
        egress = self._pool.egress
        if self._http is not None and egress is not None:
            proxy = shlex.quote(egress.sink.proxy_url)
            script = (f"export http_proxy={proxy} https_proxy={proxy} HTTP_PROXY={proxy} "
                      f"HTTPS_PROXY={proxy}; unset no_proxy NO_PROXY")  # fmt: skip
        else:
            script = "unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY"
        try:
            item.session.call(script, timeout=HARNESS_TIMEOUT_S)
        except SessionLost as lost:
            raise SandboxError(f"the sandbox shell died while being configured: {lost}") from lost

    def _release(self, item: PooledContainer) -> None:
        egress = self._pool.egress
        if egress is not None and item.address is not None:
            egress.sink.unregister(item.address)
        self._pool.discard(item)

    def _session_ready(self) -> PooledContainer:
        self._check_open()
        item = self._item
        assert item is not None
        if not item.session.alive:
            self._revive(item, hard=False)
        return item

    def _revive(self, item: PooledContainer, *, hard: bool) -> None:
        """Start a new shell in the same container (its files stay as they are).

        ``hard``: first kill every process of the sandbox user from a separate exec,
        with a little pid headroom in case leftovers (a fork bomb) took every pid.
        """
        if hard:
            limit = self._pool.limits.pids
            with _pids_headroom(item.container, limit):
                for _ in range(3):
                    try:
                        item.container.exec_run(["sh", "-c", KILL_ALL], user=SANDBOX_USER)
                        break
                    except Exception:  # noqa: BLE001 - the engine's errors vary; retried
                        time.sleep(0.2)
        item.session.start()
        self._configure(item)

    def _harness(self, script: str) -> Reply:
        """Run a request of ours (no agent code); one retry on a fresh shell."""
        with self._lock:
            item = self._session_ready()
            for attempt in range(2):
                try:
                    return item.session.call(script, timeout=HARNESS_TIMEOUT_S)
                except SessionLost as lost:
                    if attempt:
                        raise SandboxError(f"the sandbox shell is lost: {lost}") from lost
                    self._revive(item, hard=not lost.eof)
        raise AssertionError("unreachable")

    def _parse(self, reply: Reply, token: str) -> dict[str, FileState]:
        try:
            parsed = parse_snapshot(reply.stdout, token, ENGINE_FILES)
        except ValueError as error:
            raise SandboxError(f"cannot read the sandbox snapshot: {error}") from error
        if parsed.relaxed:
            restore = " && ".join(
                f"chmod {mode:o} {shlex.quote(path)}"
                for path, mode in sorted(parsed.relaxed.items(), key=lambda i: -i[0].count("/"))
            )
            if self._harness(restore).status != 0:
                raise SandboxError("cannot restore the modes the snapshot relaxed")
        return parsed.states

    def _materialise(self, plan: WorldPlan) -> dict[str, FileState]:
        token = secrets.token_hex(8)
        reply = self._harness(materialise_script(plan, WORK_ROOTS, token))
        if reply.status != 0:
            raise _Unverified(f"materialising failed ({reply.status}): "
                              f"{reply.stderr.decode(errors='replace')[-500:]}")  # fmt: skip
        return self._parse(reply, token)

    def _restore(self, plan: WorldPlan, *, allow_swap: bool) -> None:
        """Lay ``plan`` down and verify it; on failure swap containers once if allowed."""
        for attempt in range(2):
            try:
                if self._pool.baseline is None:
                    self._pool.baseline = self._materialise(plan_world((), WORK_ROOTS))
                expected = {**self._pool.baseline, **plan.states}
                found = self._materialise(plan)
                if found != expected:
                    raise _Unverified(describe_mismatch(expected, found))
                return
            except (_Unverified, SandboxError) as problem:
                if attempt or not allow_swap:
                    raise SandboxError(
                        f"the sandbox world could not be verified: {problem}"
                    ) from problem
                self._swap()

    def _swap(self) -> None:
        old, self._item = self._item, None
        if old is not None:
            self._release(old)
        self._adopt(self._pool.acquire())

    def _raise_web_errors(self, item: PooledContainer) -> None:
        egress = self._pool.egress
        if egress is None or item.address is None:
            return
        errors = egress.sink.take_errors(item.address)
        if errors:
            raise SandboxError(
                "the world's web service failed on a request from the sandbox"
            ) from errors[0]


@contextlib.contextmanager
def _pids_headroom(container: Any, limit: int) -> Iterator[None]:
    """Raise the container's pid limit a little for the duration (best effort).

    The SDK's ``update`` has no pid limit, hence the engine's endpoint itself.
    """
    api = container.client.api

    def set_limit(value: int) -> None:
        with contextlib.suppress(Exception):
            set_pids_limit(api, container.id, value)

    set_limit(limit + 32)
    try:
        yield
    finally:
        set_limit(limit)


class _Unverified(Exception):
    """A materialised world is not the one the specs describe."""
