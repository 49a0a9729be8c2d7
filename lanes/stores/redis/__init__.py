"""The Redis implementations of the store ports, shared by every process of a deployment
(which opens them through :func:`lanes.deployment.open_deployment`)."""

from __future__ import annotations

from collections.abc import Mapping

import redis

from lanes.kernel.config.models import Limits
from lanes.stores import Stores
from lanes.stores.keys import Keys
from lanes.stores.redis.batches import RedisBatches
from lanes.stores.redis.budget import RedisBudgetStore
from lanes.stores.redis.cache import RedisResponseCache
from lanes.stores.redis.counter import RedisCounter
from lanes.stores.redis.frame import RedisFrame
from lanes.stores.redis.jobs import RedisJobStore
from lanes.stores.redis.lane_state import RedisLaneState
from lanes.stores.redis.ledger import RedisLedgerSink
from lanes.stores.redis.limiter import RedisLimiter
from lanes.stores.redis.prefixes import RedisPrefixes
from lanes.stores.redis.replication import RedisReplication
from lanes.stores.redis.streams import RedisStreams
from lanes.stores.replication import Unreplicated


def redis_stores(
    client: redis.Redis, keys: Keys, *, ttl_s: int, limits: Mapping[str, Limits] | None = None,
    replicas: int = 0, wait_ms: int = 500,
) -> Stores:  # fmt: skip
    """Every store on ``client`` under ``keys``; job state lives ``ttl_s`` seconds; the lane
    state reads the headroom of the instances in ``limits`` (as their workers reserve); with
    ``replicas``, submits and results settle on that many replicas (up to ``wait_ms``)."""
    replication = RedisReplication(client, keys, replicas, wait_ms) if replicas else None
    jobs = RedisJobStore(client, keys, ttl_s, replication)
    lane_state = RedisLaneState(client, keys, limits=limits)
    limiter = RedisLimiter(client, keys)
    ledger = RedisLedgerSink(client, keys)
    return Stores(
        lane_state=lane_state,
        limiter=limiter,
        jobs=jobs,
        counter=RedisCounter(client, keys),
        frame=RedisFrame(client, jobs, lane_state, limiter, ledger),
        ledger=ledger,
        cache=RedisResponseCache(client, keys),
        budget=RedisBudgetStore(client, keys),
        prefixes=RedisPrefixes(client, keys),
        batches=RedisBatches(client, keys),
        streams=RedisStreams(client, keys),
        replication=replication or Unreplicated(),
    )


__all__ = [
    "RedisBudgetStore",
    "RedisCounter",
    "RedisFrame",
    "RedisJobStore",
    "RedisLaneState",
    "RedisLedgerSink",
    "RedisLimiter",
    "RedisResponseCache",
    "redis_stores",
]
