"""Everything a worker process shares between its threads, built once at start-up and passed in.

The stores (:class:`lanes.stores.Stores`), the provider factory and the layers around each call
(:mod:`lanes.layers`) are given, not built here: a deployment passes what
:func:`lanes.deployment.open_deployment` opened and :func:`lanes.workers.providers.build_provider`;
a test passes :func:`lanes.stores.memory.memory_stores` and a
:class:`lanes.workers.providers.fake.FakeProvider`, and runs :func:`lanes.workers.runner.run_step`
in microseconds without Redis or HTTP.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from lanes.dispatch.pools import PoolBalancer
from lanes.kernel.config import Config
from lanes.layers.build import call_layers
from lanes.layers.hooks import CallLayer
from lanes.router.lane_state import CachedLaneState, LaneStatus
from lanes.stores import Stores
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


class WorkerContext:
    def __init__(
        self,
        config: Config,
        stores: Stores,
        providers: ProviderFactory,
        *,
        ping: Callable[[], object] = _always_up,
        clock: Callable[[], float] = time.monotonic,
        layers: CallLayer | None = None,
    ) -> None:
        """``ping`` raises while the shared store is unreachable (Redis: ``client.ping``); a
        thread that met an outage polls it to know when to carry on
        (:mod:`lanes.workers.outage`). ``clock``: seconds; ages the worker's view of lane
        state. ``layers``: the features around each call (default: those the config switches
        on, without budgets: :func:`lanes.layers.build.call_layers`)."""
        self.config = config
        self.stores = stores
        self.providers = providers
        self.ping = ping
        self.clock = clock
        self.layers = layers if layers is not None else call_layers(config, stores)
        self.capacity = CapacityGate(
            stores.limiter,
            wait_slice_s=config.retry.wait_slice_s,
            threads=config.worker.concurrency,
            margin=config.limit_margin,
        )
        self.pools = PoolBalancer(config, stores.counter, stores.lane_state)
        self._lanes = CachedLaneState(stores.lane_state, ttl_s=LANE_STATE_TTL_S, clock=clock)
        self._built: dict[str, Provider] = {}
        self._lock = threading.Lock()

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
