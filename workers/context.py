"""Everything a worker process shares between its threads, built once at start-up."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import redis

from broker.keys import Keys
from broker.pools import PoolBalancer
from lanes.config import Config
from router.lane_state import LaneStateReader, StaticLaneState
from workers.providers import Provider, build_provider


@dataclass
class WorkerContext:
    config: Config
    redis: redis.Redis
    keys: Keys = field(default_factory=Keys)
    lane_state: LaneStateReader = field(default_factory=StaticLaneState)
    _providers: dict[str, Provider] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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

    def pools(self) -> PoolBalancer:
        return PoolBalancer(self.config, self.redis, self.keys, self.lane_state)

    def close(self) -> None:
        with self._lock:
            for provider in self._providers.values():
                provider.close()
            self._providers.clear()
