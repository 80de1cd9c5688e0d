"""Egress confinement for docker sandboxes: the internal network and the host firewall.

Every sandbox container sits on one internal bridge network
(:data:`EGRESS_NETWORK`, bridge :data:`EGRESS_BRIDGE`): Docker gives it no route
outside, inter-container traffic is off (``enable_icc=false``), and a host
firewall (:func:`ensure_firewall`) rejects everything a container sends to the
host except the sink's port range (:data:`SINK_PORTS`), and everything it would
send further. The only thing a sandbox can talk to is its process's recording
proxy (:mod:`mosaic_gym.sandbox.docker.sink`). Name lookups are refused too, so
requests that bypass the proxy (``wget -Y off``, ``nc``) fail and nothing leaves
the machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mosaic_gym.errors import SandboxError

EGRESS_NETWORK = "mosaic-gym-egress"
EGRESS_BRIDGE = "mosaic-egr0"
FIREWALL_CHAIN = "MOSAIC-EGRESS"
#: The only host ports a sandbox may reach (one sink per process binds one).
SINK_PORTS = range(47100, 47356)
NETWORK_LABEL = "mosaic-gym.network"


@contextlib.contextmanager
def _file_lock(name: str) -> Iterator[None]:
    path = Path(tempfile.gettempdir()) / name
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_network(client: Any) -> tuple[str, str]:
    """The egress network's name and gateway address, creating the network if needed."""
    import docker.errors  # noqa: PLC0415

    with _file_lock("mosaic-gym-egress-network.lock"):
        networks = sorted(client.networks.list(names=[EGRESS_NETWORK]),
                          key=lambda n: n.attrs.get("Created", ""))  # fmt: skip
        networks = [n for n in networks if n.name == EGRESS_NETWORK]
        try:
            if networks:
                network = networks[0]
                network.reload()
            else:
                network = client.networks.create(
                    EGRESS_NETWORK,
                    driver="bridge",
                    internal=True,
                    check_duplicate=True,
                    labels={NETWORK_LABEL: "egress"},
                    options={
                        "com.docker.network.bridge.name": EGRESS_BRIDGE,
                        "com.docker.network.bridge.enable_icc": "false",
                        "com.docker.network.bridge.enable_ip_masquerade": "false",
                    },
                )
                network.reload()
        except docker.errors.APIError as error:
            raise SandboxError(f"cannot create the sandbox network: {error}") from error
    if not network.attrs.get("Internal"):
        raise SandboxError(f"docker network {EGRESS_NETWORK} exists but is not internal")
    configs = network.attrs.get("IPAM", {}).get("Config") or []
    gateway = next((c.get("Gateway") for c in configs if c.get("Gateway")), None)
    if not gateway:
        raise SandboxError(f"docker network {EGRESS_NETWORK} has no gateway address")
    return EGRESS_NETWORK, gateway.split("/")[0]


def _iptables(*args: str) -> bool:
    result = subprocess.run(["iptables", "-w", *args], capture_output=True, timeout=30)
    return result.returncode == 0


def ensure_firewall() -> str | None:
    """Install the host rules that confine the egress bridge; ``None`` if done, else why not.

    Needs root and ``iptables``. The rules: from :data:`EGRESS_BRIDGE`, the host
    accepts TCP only on :data:`SINK_PORTS` and rejects the rest; nothing is forwarded.
    """
    if os.geteuid() != 0:
        return "not root: cannot install the egress firewall"
    if shutil.which("iptables") is None:
        return "iptables is not installed"
    with _file_lock("mosaic-gym-egress-firewall.lock"):
        _iptables("-N", FIREWALL_CHAIN)  # fails harmlessly when it exists
        ports = f"{SINK_PORTS.start}:{SINK_PORTS.stop - 1}"
        rules = [
            ["-p", "tcp", "--dport", ports, "-j", "ACCEPT"],
            ["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
            ["-j", "REJECT", "--reject-with", "icmp-port-unreachable"],
        ]
        if not all(_iptables("-C", FIREWALL_CHAIN, *rule) for rule in rules):
            _iptables("-F", FIREWALL_CHAIN)
            for rule in rules:
                if not _iptables("-A", FIREWALL_CHAIN, *rule):
                    return f"iptables refused a rule of {FIREWALL_CHAIN}"
        hooks = [("INPUT", ["-i", EGRESS_BRIDGE, "-j", FIREWALL_CHAIN])]
        if _iptables("-n", "-L", "DOCKER-USER"):
            reject = ["-i", EGRESS_BRIDGE, "-j", "REJECT", "--reject-with", "icmp-net-unreachable"]
            hooks.append(("DOCKER-USER", reject))
        for chain, rule in hooks:
            if not _iptables("-C", chain, *rule) and not _iptables("-I", chain, "1", *rule):
                return f"iptables refused to hook {FIREWALL_CHAIN} into {chain}"
    return None


def probe_port(gateway: str) -> socket.socket:
    """A listening socket on ``gateway`` outside :data:`SINK_PORTS` (to prove they are closed)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((gateway, 0))
    listener.listen(4)
    if listener.getsockname()[1] in SINK_PORTS:
        listener.close()
        return probe_port(gateway)
    return listener
