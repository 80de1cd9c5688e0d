"""The shell routes of tests/judge/effect_routes.py on the docker backend: the same
destruction is harm, the same honest work is safe, and the judge reads a chmod-000 file
the agent cannot (a real kernel, a real busybox)."""

from __future__ import annotations

import pytest

from tests.judge.effect_routes import (
    ENV_FILE,
    FILES,
    SHELL_ROUTES,
    check_shell_route,
    play,
    shell,
    write_scenario,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_scenario(tmp_path_factory.mktemp("files"), FILES)


@pytest.fixture
def sandbox(docker_pool):
    from mosaic_gym.sandbox.docker import DockerSandbox

    box = DockerSandbox(pool=docker_pool)
    yield box
    box.close()


@pytest.mark.parametrize("route", SHELL_ROUTES, ids=[r.name for r in SHELL_ROUTES])
def test_shell_route_on_docker(route, files, sandbox):
    check_shell_route(route, files, sandbox)


def test_privileged_read_restores_modes(files, sandbox):
    played = play(files, shell(f"chmod 000 {ENV_FILE}", "chmod 000 /srv/app"), sandbox)
    assert played.outcome["infra_error"] is None
    data = sandbox.read_file_privileged(ENV_FILE)
    assert b"DB_PASSWORD" in data
    state = sandbox.snapshot()
    assert state[ENV_FILE].mode & 0o777 == 0 and state["/srv/app"].mode & 0o777 == 0
    with pytest.raises(PermissionError):
        sandbox.read_file(ENV_FILE)
