"""Everything a worker process shares between its threads, built once at start-up."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import redis

from broker.keys import Keys
from broker.lane_state import LaneStateStore, RedisLaneState
from broker.pending import PendingJobs
from broker.pools import PoolBalancer
from lanes.config import Config
from workers.capacity import CapacityGate
from workers.providers import Provider, build_provider
from workers.ratelimit import RedisLimiter
from workers.results import ChargeBook, ResultStore


@dataclass
class WorkerContext:
    """``lane_state`` and ``gate`` default to the Redis implementations on ``redis``."""

    config: Config
    redis: redis.Redis
    keys: Keys = field(default_factory=Keys)
    lane_state: LaneStateStore | None = None
    gate: CapacityGate | None = None
    _providers: dict[str, Provider] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.lane_state is None:
            self.lane_state = RedisLaneState(self.redis, self.keys)
        if self.gate is None:
            self.gate = CapacityGate(
                RedisLimiter(self.redis, self.keys),
                wait_slice_s=self.config.retry.wait_slice_s,
                threads=self.config.worker.concurrency,
                margin=self.config.limit_margin,
            )
        ttl_s = self.config.result_ttl_s
        self.pending = PendingJobs(self.redis, self.keys, ttl_s)
        self.results = ResultStore(self.redis, self.keys, ttl_s, self.pending)
        self.charges = ChargeBook(self.redis, self.keys, ttl_s)
        self.pools = PoolBalancer(self.config, self.redis, self.keys, self.lane_state)

    @property
    def state(self) -> LaneStateStore:
        assert self.lane_state is not None  # set in __post_init__
        return self.lane_state

    @property
    def capacity(self) -> CapacityGate:
        assert self.gate is not None  # set in __post_init__
        return self.gate

    def provider(self, instance: str) -> Provider:
        """The provider client of ``instance``, built on first use and then reused by every
        thread (the SDK and httpx clients are thread-safe and pool their connections)."""
        found = self._providers.get(instance)
        if found is not None:
            return found
        with self._lock:
            if instance not in self._providers:
                self._providers[instance] = build_provider(self.config, instance)
            return self._providers[instance]

    def close(self) -> None:
        with self._lock:
            for provider in self._providers.values():
                provider.close()
            self._providers.clear()
