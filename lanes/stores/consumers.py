"""Which lanes some worker consumes, read from Redis in one round trip.

Every worker process beats every :data:`HEARTBEAT_S`: for each lane it consumes, its node name
goes into that lane's sorted set (:meth:`lanes.stores.keys.Keys.consumers`) with the Redis server
time as score. A lane is *served* while one of its members beat within :data:`STALE_S`.

Callers that wait for jobs ask this instead of Celery's ``inspect`` broadcast: a broadcast takes
a second, borrows a broker connection from a bounded pool (many threads waiting at once can
exhaust it) and hears every worker on the database. Whether a served lane is also *consumed*
(its worker takes messages) is the liveness canary's question
(:mod:`lanes.workers.services.liveness`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Sequence

import redis

from lanes.kernel.errors import InfrastructureError
from lanes.stores.keys import Keys
from lanes.stores.scripts import redis_errors, server_time_s

log = logging.getLogger("lanes.consumers")

HEARTBEAT_S = 5.0
"""How often a worker says which lanes it consumes."""
STALE_S = 15.0
"""A beat older than this no longer counts: three missed beats."""


def beat(client: redis.Redis, keys: Keys, node: str, lanes: Sequence[str]) -> None:
    """``node`` consumes ``lanes`` now; members silent for long are dropped on the way."""
    with redis_errors("recording which lanes a worker consumes"):
        now = server_time_s(*client.time())
        with client.pipeline(transaction=False) as pipe:
            for lane in lanes:
                key = keys.consumers(lane)
                pipe.zadd(key, {node: now})
                pipe.zremrangebyscore(key, "-inf", now - 4 * STALE_S)
                pipe.expire(key, int(4 * STALE_S))
            pipe.execute()


def leave(client: redis.Redis, keys: Keys, node: str, lanes: Sequence[str]) -> None:
    """``node`` stops consuming ``lanes`` (a worker shutting down)."""
    with redis_errors("recording a worker leaving its lanes"), client.pipeline() as pipe:
        for lane in lanes:
            pipe.zrem(keys.consumers(lane), node)
        pipe.execute()


def served(client: redis.Redis, keys: Keys, lanes: Collection[str]) -> set[str]:
    """Those of ``lanes`` that some worker beat for within :data:`STALE_S`."""
    ordered = sorted(lanes)
    with (
        redis_errors("reading which lanes workers consume"),
        client.pipeline(transaction=False) as pipe,
    ):
        pipe.time()
        for lane in ordered:
            pipe.zrevrange(keys.consumers(lane), 0, 0, withscores=True)
        replies = pipe.execute()
    now = server_time_s(*replies[0])
    return {
        lane
        for lane, newest in zip(ordered, replies[1:], strict=True)
        if newest and now - float(newest[0][1]) <= STALE_S
    }


def start_heartbeat(
    client: redis.Redis, keys: Keys, node: str, lanes: Sequence[str], stop: threading.Event
) -> threading.Thread:
    """Beat for ``node`` at once, then every :data:`HEARTBEAT_S` until ``stop`` is set; then
    leave. A Redis error skips one beat (the next may work)."""

    def loop() -> None:
        while True:
            try:
                beat(client, keys, node, lanes)
            except InfrastructureError as exc:
                log.warning("worker heartbeat skipped: %s", exc)
            if stop.wait(HEARTBEAT_S):
                break
        try:
            leave(client, keys, node, lanes)
        except InfrastructureError as exc:
            log.warning("worker left its lanes without saying so: %s", exc)

    thread = threading.Thread(target=loop, name="lanes-heartbeat", daemon=True)
    thread.start()
    return thread
