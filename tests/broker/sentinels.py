"""A Redis primary, its replica and three sentinels on loopback ports, for tests."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from lanes.broker.embedded import DEFAULT_HOST, EmbeddedRedis, free_port, redis_server_binary
from lanes.broker.sentinel import DEFAULT_MASTER, primary_address

from ..workers.rig import wait_for

DOWN_AFTER_MS = 1000


@dataclass
class SentinelCluster:
    home: Path
    master: str = DEFAULT_MASTER
    servers: list[EmbeddedRedis] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://{DEFAULT_HOST}:{port}" for port in self.ports) + "/0"

    def primary(self) -> EmbeddedRedis:
        _host, port = primary_address(self.url, self.master, timeout_s=1.0)
        return next(server for server in self.servers if server.port == port)

    def start(self) -> SentinelCluster:
        primary = EmbeddedRedis(self.home / "primary").start()
        follow = ["--replicaof", DEFAULT_HOST, str(primary.port)]
        replica = EmbeddedRedis(self.home / "replica", extra_args=follow)
        self.servers = [primary, replica.start()]
        wait_for(
            "the replica to sync",
            lambda: _info(replica.port, "replication").get("master_link_status") == "up",
            30,
        )
        for i in range(3):
            self.ports.append(free_port())
            self.procs.append(self._sentinel(i, self.ports[-1], primary.port))
        wait_for("the sentinels to find each other and the replica", self._formed, 30)
        return self

    def _sentinel(self, i: int, port: int, primary_port: int) -> subprocess.Popen[bytes]:
        home = self.home / f"sentinel{i}"
        home.mkdir(parents=True)
        conf = home / "sentinel.conf"
        conf.write_text(
            f"port {port}\nbind {DEFAULT_HOST}\ndir {home}\nlogfile sentinel.log\n"
            f"sentinel monitor {self.master} {DEFAULT_HOST} {primary_port} 2\n"
            f"sentinel down-after-milliseconds {self.master} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {self.master} 10000\n"
        )
        return subprocess.Popen([redis_server_binary(), str(conf), "--sentinel"],
                                stdout=subprocess.DEVNULL, start_new_session=True)  # fmt: skip

    def _formed(self) -> bool:
        for port in self.ports:
            with contextlib.suppress(redis.RedisError):
                state = _client(port).sentinel_master(self.master)
                if state["num-other-sentinels"] == 2 and state["num-slaves"] == 1:
                    continue
            return False
        return True

    def failed_over(self, old: EmbeddedRedis) -> EmbeddedRedis:
        """Wait until every sentinel names a primary other than ``old``; that primary."""

        def moved() -> bool:
            with contextlib.suppress(redis.RedisError):
                named = {_client(port).sentinel_get_master_addr_by_name(self.master)[1]
                         for port in self.ports}  # fmt: skip
                return named != {old.port} and len(named) == 1
            return False

        wait_for("the sentinels to agree on a new primary", moved, 60)
        new = self.primary()
        wait_for(
            "the promotion", lambda: _info(new.port, "replication").get("role") == "master", 30
        )
        return new

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(timeout=10)
        for server in self.servers:
            server.stop()


@contextlib.contextmanager
def sentinel_cluster(home: Path) -> Iterator[SentinelCluster]:
    cluster = SentinelCluster(home)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def _client(port: int) -> redis.Redis:
    return redis.Redis(host=DEFAULT_HOST, port=port, socket_timeout=1, decode_responses=True)


def _info(port: int, section: str) -> dict[str, object]:
    with contextlib.suppress(redis.RedisError):
        return dict(_client(port).info(section))
    return {}
