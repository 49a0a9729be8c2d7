"""Everything a worker process shares between its threads, built once at start-up and passed in.

The stores (:class:`lanes.stores.Stores`) and the provider factory are given, not built here:
a deployment passes the Redis stores and :func:`lanes.workers.providers.build_provider`; a test
passes :func:`lanes.stores.memory.memory_stores` and a
:class:`lanes.workers.providers.fake.FakeProvider`, and runs :func:`lanes.workers.runner.run_step`
in microseconds without Redis or HTTP.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lanes.dispatch.pools import PoolBalancer
from lanes.kernel.config import Config
from lanes.router.lane_state import CachedLaneState, LaneStatus
from lanes.stores import Stores
from lanes.workers.books import Books, CallBudget
from lanes.workers.capacity import CapacityGate
from lanes.workers.providers import Provider

LANE_STATE_TTL_S = 0.25
"""How old a worker's view of a lane's cooldown and disabled flag may be before a fresh
message's call. Its own process's feedback (a 429, a 401) refreshes it at once; another
process's reaches it within this time. A redelivered message always reads the live state."""

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
    met an outage polls it to know when to carry on (:mod:`lanes.workers.outage`)."""
    clock: Callable[[], float] = time.monotonic
    """Seconds; ages the worker's view of lane state."""
    budget: CallBudget | None = None
    """Holds and settles budget reservations per call (None: no budgets)."""
    _built: dict[str, Provider] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.capacity = CapacityGate(
            self.stores.limiter,
            wait_slice_s=self.config.retry.wait_slice_s,
            threads=self.config.worker.concurrency,
            margin=self.config.limit_margin,
        )
        self.books = Books(self.config, self.stores, self.budget)
        self.pools = PoolBalancer(self.config, self.stores.counter, self.stores.lane_state)
        self._lanes = CachedLaneState(
            self.stores.lane_state, ttl_s=LANE_STATE_TTL_S, clock=self.clock
        )

    def lane_status(self, instance: str) -> LaneStatus:
        """The state of ``instance``, read from the store at most every ``LANE_STATE_TTL_S``."""
        return self._lanes.status(instance)

    def lane_state_changed(self) -> None:
        """This process wrote lane state: read it afresh before the next call."""
        self._lanes.expire()

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
