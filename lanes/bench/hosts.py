"""Hosts simulated on one machine, for ``lanes bench chaos --hosts N``: each a Linux network
namespace with its own hostname (a UTS namespace per process), its own clock offset, and two
links to this machine's root namespace, each through a bridge:

- the *state* network (``10.231.0.0/24``, this machine ``10.231.0.1``): Redis, broker and state;
- the *provider* network (``10.232.0.0/24``, this machine ``10.232.0.1``): the simulator.

Cutting a host's state link (:meth:`Host.cut`) leaves its provider calls running: the host
answers late, as one cut off from Redis mid-call does. Inside a host the simulator is reached
at ``127.0.0.1`` through a relay (:mod:`lanes.bench.relay`), as the config expects it.

A clock offset applies to ``time.time()`` and ``time.time_ns()`` of the host's Python
processes (a ``sitecustomize`` on their path, :mod:`lanes.bench.skew`); Redis time, which
lanes' limits, budgets and leases read, is the state host's own.

Needs root and ``ip`` (iproute2); :func:`require_netns` says so within a second.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lanes.kernel.errors import InfrastructureError

STATE_NET = "10.231.0"
PROVIDER_NET = "10.232.0"
ROOT_IP = 1
PREFIX = "lnh"
"""Every namespace, bridge and link this module makes starts with it (cleared on start)."""
SKEW_DIR = Path(__file__).parent / "skew"
SKEW_ENV = "SIMULATED_CLOCK_SKEW_S"


@dataclass(frozen=True)
class Host:
    index: int
    skew_s: float

    @property
    def name(self) -> str:
        return f"{PREFIX}{self.index}"

    @property
    def hostname(self) -> str:
        return f"host{self.index}"

    @property
    def state_link(self) -> str:
        """The root namespace's end of the host's state link."""
        return f"{PREFIX}s{self.index}"

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run on this host: in its namespace, under its own hostname."""
        return ["ip", "netns", "exec", self.name, "unshare", "--uts", "sh", "-c",
                'hostname "$0" && exec "$@"', self.hostname, *argv]  # fmt: skip

    def env(self) -> dict[str, str]:
        """What a Python process on this host needs to see its clock offset."""
        path = os.pathsep.join(p for p in (str(SKEW_DIR), os.environ.get("PYTHONPATH")) if p)
        return {"PYTHONPATH": path, SKEW_ENV: str(self.skew_s)}

    def cut(self) -> None:
        """Cut the host off from the state network (Redis and broker); provider calls go on."""
        _ip("link", "set", self.state_link, "down")

    def mend(self) -> None:
        _ip("link", "set", self.state_link, "up")


def require_netns() -> None:
    if os.geteuid() != 0:
        raise InfrastructureError("simulated hosts need root (network namespaces): run as root")
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        raise InfrastructureError("simulated hosts need `ip` (iproute2) and `unshare`")


@contextlib.contextmanager
def simulated_hosts(skews: Sequence[float]) -> Iterator[list[Host]]:
    """One host per clock offset in ``skews``, removed again on exit (and any left behind by
    an earlier run that did not get to clean up)."""
    require_netns()
    _clear()
    hosts = [Host(i + 1, skew) for i, skew in enumerate(skews)]
    try:
        _bridge(f"{PREFIX}br-s", STATE_NET)
        _bridge(f"{PREFIX}br-p", PROVIDER_NET)
        for host in hosts:
            _add(host)
        yield hosts
    finally:
        _clear()


def _bridge(name: str, net: str) -> None:
    _ip("link", "add", name, "type", "bridge")
    _ip("addr", "add", f"{net}.{ROOT_IP}/24", "dev", name)
    _ip("link", "set", name, "up")


def _add(host: Host) -> None:
    _ip("netns", "add", host.name)
    _ip("-n", host.name, "link", "set", "lo", "up")
    for kind, net in (("s", STATE_NET), ("p", PROVIDER_NET)):
        outer, inner = f"{PREFIX}{kind}{host.index}", f"eth-{kind}"
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner, "netns", host.name)
        _ip("link", "set", outer, "master", f"{PREFIX}br-{kind}")
        _ip("link", "set", outer, "up")
        _ip("-n", host.name, "addr", "add", f"{net}.{10 + host.index}/24", "dev", inner)
        _ip("-n", host.name, "link", "set", inner, "up")


def _clear() -> None:
    found = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    for line in found.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(PREFIX):
            _ip("netns", "del", name, check=False)
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                           check=False)  # fmt: skip
    for line in links.stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(PREFIX):
            _ip("link", "del", name, check=False)


def _ip(*args: str, check: bool = True) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise InfrastructureError(f"ip {' '.join(args)}: {done.stderr.strip()}")
