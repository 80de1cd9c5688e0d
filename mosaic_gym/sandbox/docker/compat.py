"""Every use of the Docker SDK's private API goes through this module.

Two things the ``docker`` SDK (7.x) offers no public call for:

* the raw socket of an attached ``exec_start(..., socket=True)``: the SDK returns a wrapper
  whose ``_sock`` attribute is the socket the persistent shell reads and writes;
* the engine's ``/containers/{id}/update`` endpoint with ``PidsLimit`` (``Container.update``
  has no pid limit), reached with ``APIClient._url``, ``_post_json`` and
  ``_raise_for_status``.

:func:`check_version` refuses an SDK outside the tested major version with a clear message;
``tests/sandbox/test_docker_compat.py`` checks each private name against the installed SDK
(``tests/docker/test_compat.py`` the ``_sock`` of a live exec).
"""

from __future__ import annotations

from typing import Any

from mosaic_gym.errors import DependencyVersionError

TESTED_MAJOR = 7
PRIVATE_NAMES = {"docker.api.client.APIClient": ("_url", "_post_json", "_raise_for_status")}


def check_version() -> None:
    """Raise :class:`DependencyVersionError` unless the Docker SDK is of the tested major."""
    import docker

    major = int(str(docker.__version__).split(".")[0])
    if major != TESTED_MAJOR:
        raise DependencyVersionError(
            f"mosaic-gym's docker backend uses private parts of the Docker SDK tested with "
            f"docker {TESTED_MAJOR}.x; this is docker {docker.__version__}. Install "
            f"'docker>={TESTED_MAJOR},<{TESTED_MAJOR + 1}' or update "
            "mosaic_gym/sandbox/docker/compat.py")


def raw_socket(attached: Any) -> Any:
    """The socket inside what ``exec_start(..., socket=True)`` returned."""
    return getattr(attached, "_sock", attached)


def set_pids_limit(api: Any, container_id: str, value: int) -> None:
    """Set a running container's pid limit (the engine's update endpoint)."""
    check_version()
    url = api._url("/containers/{0}/update", container_id)
    api._raise_for_status(api._post_json(url, data={"PidsLimit": value}))
