"""Settling on a replica with ``WAIT``: it counts the replicas holding the writes of the
connection that sends it, so a write (to one probe key) goes first on that same connection;
the replication stream is ordered, so every earlier write, from any connection, is held too."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import redis

from lanes.stores.keys import Keys
from lanes.stores.scripts import redis_errors

log = logging.getLogger(__name__)

WARN_EVERY_S = 60.0


@dataclass
class RedisReplication:
    client: redis.Redis
    keys: Keys
    replicas: int
    timeout_ms: int
    _warned_at: float = field(default=-WARN_EVERY_S, init=False)

    def settle(self) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.keys.replica_probe(), "1", px=60_000)
        pipe.wait(self.replicas, self.timeout_ms)
        with redis_errors("waiting for a replica"):
            held = int(pipe.execute()[1])
        if held < self.replicas and time.monotonic() - self._warned_at > WARN_EVERY_S:
            self._warned_at = time.monotonic()
            log.warning(
                "%d of %d replicas acknowledged within %d ms: a failover now may lose the last"
                " writes (see `lanes doctor`)", held, self.replicas, self.timeout_ms,
            )  # fmt: skip
