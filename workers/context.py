"""Everything a worker process shares between its threads, built once at start-up and passed in.

The stores (:class:`broker.stores.Stores`) and the provider factory are given, not built here:
a deployment passes the Redis stores and :func:`workers.providers.build_provider`; a test
passes :func:`broker.stores.memory.memory_stores` and a
:class:`workers.providers.fake.FakeProvider`, and runs :func:`workers.runner.run_step` in
microseconds without Redis or HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from broker.pools import PoolBalancer
from broker.stores import Stores
from kernel.config import Config
from workers.capacity import CapacityGate
from workers.providers import Provider

ProviderFactory = Callable[[Config, str], Provider]
"""``factory(config, instance)`` builds the provider client of one instance."""


def _always_up() -> None:
    """The availability probe of stores that cannot go away (in memory)."""


@dataclass
class WorkerContext:
    config: Config
    stores: Stores
    providers: ProviderFactory
    ping: Callable[[], object] = _always_up
    """Raises while the shared store is unreachable (Redis: ``client.ping``); a thread that
    met an outage polls it to know when to carry on (:mod:`workers.outage`)."""
    _built: dict[str, Provider] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.capacity = CapacityGate(
            self.stores.limiter,
            wait_slice_s=self.config.retry.wait_slice_s,
            threads=self.config.worker.concurrency,
            margin=self.config.limit_margin,
        )
        self.pools = PoolBalancer(self.config, self.stores.counter, self.stores.lane_state)

    def provider(self, instance: str) -> Provider:
        """The provider client of ``instance``, built on first use and then reused by every
        thread (the SDK and httpx clients are thread-safe and pool their connections)."""
        found = self._built.get(instance)
        if found is not None:
            return found
        with self._lock:
            if instance not in self._built:
                self._built[instance] = self.providers(self.config, instance)
            return self._built[instance]

    def close(self) -> None:
        with self._lock:
            for provider in self._built.values():
                provider.close()
            self._built.clear()
