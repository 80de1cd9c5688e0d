"""No container outlives its owner: what a SIGKILLed process leaves is reaped.

A child process makes sandboxes and is killed with SIGKILL (no ``close``, no
``atexit``). Its containers are then orphans: the next pool start removes them,
and so does ``mosaic sandbox prune``. Containers of live processes are never touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from mosaic_gym.sandbox.docker.cli import prune
from mosaic_gym.sandbox.docker.engine import LABEL_OWNER_PID, DockerEngine
from mosaic_gym.sandbox.docker.pool import SandboxPool

pytestmark = pytest.mark.docker

CHILD = textwrap.dedent(
    """
    import sys, time
    from mosaic_gym.sandbox.docker.sandbox import DockerSandbox
    from mosaic_gym.sandbox.docker.pool import SandboxPool
    boxes = [DockerSandbox() for _ in range(2)]
    pool = SandboxPool(spares=1, egress=False).start()
    boxes.append(DockerSandbox(pool=pool))
    print(" ".join(box.container.id for box in boxes), flush=True)
    time.sleep(600)
    """
)


def orphans_of_a_killed_child() -> list[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    try:
        assert child.stdout is not None
        ids = child.stdout.readline().split()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert len(ids) == 3, "the child did not start its sandboxes"
    return ids


def existing(client: Any, ids: list[str]) -> set[str]:
    found = client.containers.list(all=True, filters={"label": "mosaic-gym.sandbox=1"})
    return {c.id for c in found} & set(ids)


def test_next_pool_start_reaps_a_killed_owner() -> None:
    ids = orphans_of_a_killed_child()
    engine = DockerEngine()  # as in a fresh process
    assert existing(engine.client, ids) == set(ids)  # SIGKILL left them behind
    SandboxPool(egress=False, engine_=engine).start().close()
    assert existing(engine.client, ids) == set()


def test_prune_removes_orphans_and_spares_the_living() -> None:
    engine = DockerEngine()
    with SandboxPool(spares=1, egress=False, engine_=engine) as alive_pool:
        mine = alive_pool.acquire()
        assert mine.container.labels[LABEL_OWNER_PID] == str(os.getpid())
        ids = orphans_of_a_killed_child()
        assert existing(engine.client, ids) == set(ids)
        assert prune() >= len(ids)
        assert existing(engine.client, ids) == set()
        mine.container.reload()
        assert mine.container.status == "running"  # a live owner's container stays
        alive_pool.discard(mine)
