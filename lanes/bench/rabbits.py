"""A three-node RabbitMQ cluster on loopback ports, for ``lanes bench chaos --rabbitmq`` and
the tests: its own node names, ports and data directories, beside whatever RabbitMQ the
machine already runs. Needs ``rabbitmq-server`` and ``rabbitmqctl`` on the PATH; as root, the
nodes run as the ``rabbitmq`` user (what ``rabbitmq-server`` does), so their directory is one
that user can reach."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lanes.broker.embedded import free_port
from lanes.kernel.errors import InfrastructureError

CTL_TIMEOUT_S = 90.0


@dataclass
class RabbitNode:
    name: str
    port: int
    home: Path
    proc: subprocess.Popen[bytes] | None = None
    killed: bool = False

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self) -> RabbitNode:
        for sub in ("mnesia", "log"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        (self.home / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n"
            "log.console = false\n"
        )
        (self.home / "enabled_plugins").write_text("[].\n")
        _give_to_rabbitmq(self.home)
        env = {**os.environ,
               "RABBITMQ_NODENAME": self.name, "RABBITMQ_NODE_PORT": str(self.port),
               "RABBITMQ_DIST_PORT": str(free_port()),
               "RABBITMQ_MNESIA_BASE": str(self.home / "mnesia"),
               "RABBITMQ_LOG_BASE": str(self.home / "log"),
               "RABBITMQ_CONFIG_FILE": str(self.home / "rabbitmq.conf"),
               "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.home / "enabled_plugins"),
               "RABBITMQ_PID_FILE": str(self.home / "pid")}  # fmt: skip
        log = (self.home / "server.log").open("ab")
        self.proc = subprocess.Popen(["rabbitmq-server"], env=env, stdout=log, stderr=log,
                                     start_new_session=True)  # fmt: skip
        return self

    def ctl(self, *args: str, tool: str = "rabbitmqctl") -> str:
        done = subprocess.run([tool, "-n", self.name, *args], capture_output=True, text=True,
                              timeout=CTL_TIMEOUT_S)  # fmt: skip
        if done.returncode != 0:
            what = f"{tool} {' '.join(args)} on {self.name}"
            raise InfrastructureError(f"{what}: {done.stderr[-2000:]}")
        return done.stdout

    def await_startup(self, timeout_s: float = 90.0) -> None:
        """Until the node runs RabbitMQ (``await_startup`` gives up at once on a node that
        has not reached epmd yet); InfrastructureError with its log when it died."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.ctl("await_startup", "--timeout", "30")
                return
            except InfrastructureError as exc:
                died = self.proc is not None and self.proc.poll() is not None
                if died or time.monotonic() > deadline:
                    log = (self.home / "server.log").read_text(errors="replace")[-3000:]
                    why = f"RabbitMQ node {self.name} did not start:\n{log}"
                    raise InfrastructureError(why) from exc
                time.sleep(0.5)

    def beam_pid(self) -> int:
        return int((self.home / "pid").read_text().strip())

    def kill(self) -> None:
        """SIGKILL: the node dies as a host would, with no goodbye to its cluster."""
        self.killed = True
        with contextlib.suppress(OSError, ValueError):
            os.kill(self.beam_pid(), signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)

    def restart(self) -> None:
        """Start a killed node again on its data: it rejoins its cluster."""
        self.killed = False
        self.start().await_startup()

    def stop(self) -> None:
        with contextlib.suppress(InfrastructureError, subprocess.TimeoutExpired):
            self.ctl("stop")
        self.kill()


@dataclass
class RabbitCluster:
    home: Path
    nodes: list[RabbitNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Every node, as ``broker.url`` takes them: a client moves to the next on a loss."""
        return ";".join(node.url for node in self.nodes)

    def start(self) -> RabbitCluster:
        tag = f"lanes-{os.getpid()}"
        self.nodes = [RabbitNode(f"{tag}-{i}@localhost", free_port(), self.home / f"node{i}")
                      for i in range(3)]  # fmt: skip
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.await_startup()
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
        return self

    def leader(self, queue: str) -> RabbitNode:
        """The node that leads ``queue`` (a quorum queue)."""
        for node in self.nodes:
            with contextlib.suppress(InfrastructureError, subprocess.TimeoutExpired, ValueError):
                rows = json.loads(node.ctl("list_queues", "name", "leader", "--formatter",
                                           "json", "-q"))  # fmt: skip
                leader = next(row["leader"] for row in rows if row["name"] == queue)
                return next(n for n in self.nodes if n.name == leader)
        raise InfrastructureError(f"no node of the cluster names a leader of {queue}")

    def members(self, queue: str, via: RabbitNode) -> list[str]:
        rows = json.loads(via.ctl("list_queues", "name", "members", "--formatter", "json", "-q"))
        return next(list(row["members"]) for row in rows if row["name"] == queue)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _give_to_rabbitmq(path: Path) -> None:
    """``rabbitmq-server`` started by root runs as the ``rabbitmq`` user: it must own its
    directories."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("rabbitmq")
    except KeyError:
        return
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, d) for d in dirs),
                     *(os.path.join(root, f) for f in files)]:  # fmt: skip
            os.chown(name, user.pw_uid, user.pw_gid)


MISSING = "rabbitmq-server and rabbitmqctl are not on the PATH: install RabbitMQ (3.10 or later)"


def rabbitmq_installed() -> bool:
    return shutil.which("rabbitmq-server") is not None and shutil.which("rabbitmqctl") is not None


@contextlib.contextmanager
def rabbit_cluster() -> Iterator[RabbitCluster]:
    """A started cluster, in a directory of its own the ``rabbitmq`` user can reach (a
    test's or a state directory may be private to the user running it); stopped and removed
    on exit. InfrastructureError when RabbitMQ is not installed or a node does not start."""
    if not rabbitmq_installed():
        raise InfrastructureError(MISSING)
    home = Path(tempfile.mkdtemp(prefix="lanes-rabbit-"))
    home.chmod(0o755)
    cluster = RabbitCluster(home)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        shutil.rmtree(home, ignore_errors=True)
