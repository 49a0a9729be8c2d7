"""Everything a worker process shares between its threads, built once at start-up."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import redis

from broker.keys import Keys
from broker.lane_state import RedisLaneState
from broker.pending import PendingJobs
from broker.pools import PoolBalancer
from kernel.config import Config
from workers.capacity import CapacityGate
from workers.providers import Provider, build_provider
from workers.ratelimit import RedisLimiter
from workers.results import ChargeBook, ResultStore


@dataclass
class WorkerContext:
    """A worker's shared state; everything lives in the Redis behind ``redis``."""

    config: Config
    redis: redis.Redis
    keys: Keys = field(default_factory=Keys)
    _providers: dict[str, Provider] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        ttl_s = self.config.result_ttl_s
        self.state = RedisLaneState(self.redis, self.keys)
        self.limiter = RedisLimiter(self.redis, self.keys)
        self.capacity = CapacityGate(
            self.limiter,
            wait_slice_s=self.config.retry.wait_slice_s,
            threads=self.config.worker.concurrency,
            margin=self.config.limit_margin,
        )
        self.pending = PendingJobs(self.redis, self.keys, ttl_s)
        self.results = ResultStore(self.redis, self.keys, ttl_s, self.pending)
        self.charges = ChargeBook(self.redis, self.keys, ttl_s)
        self.pools = PoolBalancer(self.config, self.redis, self.keys, self.state)

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
