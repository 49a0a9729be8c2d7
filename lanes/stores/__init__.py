"""Every store lanes keeps shared state in, each behind a small port.

==================  ===========================================  ============================
port                what it keeps                                implementations
==================  ===========================================  ============================
``LaneStateStore``  cooldowns, disabled instances, health         ``redis.lane_state``,
                                                                  ``memory.lane_state``
``RateLimiter``     token buckets and concurrency leases          ``redis.limiter``,
                                                                  ``memory.limiter``
``JobStore``        pending jobs, results, charges, idempotency  ``redis.jobs``, ``memory.jobs``
``RotationCounter`` global round robin of pools and strategies    ``redis.counter``,
                                                                  ``router...LocalCounter``
``StepFrame``       the reads before and writes after each call  ``redis.frame``,
                                                                  ``frame.SequentialFrame``
``LedgerQueue``     ledger events on their way to the database   ``redis.ledger``,
                                                                  ``memory.ledger``
``ResponseCache``   answers to identical requests, with a TTL     ``redis.cache``,
                                                                  ``memory.cache``
``BudgetStore``     budget counters, reservations, overrides      ``redis.budget``,
                                                                  ``memory.budget``
``PrefixStore``     which account caches a shared prompt prefix   ``redis.prefixes``,
                                                                  ``memory.prefixes``
``BatchStore``      jobs parked for provider batches, open ones   ``redis.batches``,
                                                                  ``memory.batches``
``StreamStore``     streaming jobs' answers as they are made      ``redis.streams``,
                                                                  ``memory.streams``
==================  ===========================================  ============================

:class:`Stores` bundles one of each: a deployment's, on Redis, is opened with the rest of its
connections by :func:`lanes.deployment.open_deployment` (through
:func:`lanes.stores.redis.redis_stores`); :func:`lanes.stores.memory.memory_stores` builds one
in this process's memory (tests, routing on a laptop). The dispatcher and the workers receive
a :class:`Stores` and never build one themselves. The
ledger itself (SQL, :mod:`lanes.stores.sql`) is not here: it is off every job's path, fed by
the ``LedgerQueue`` (:mod:`lanes.workers.services.ledger_drain`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lanes.router.strategies import RotationCounter
from lanes.stores.batches import BatchStore
from lanes.stores.budget import BudgetStore
from lanes.stores.cache import ResponseCache
from lanes.stores.frame import StepFrame
from lanes.stores.jobs import JobStore
from lanes.stores.lane_state import LaneStateStore
from lanes.stores.ledger import LedgerQueue
from lanes.stores.limiter import RateLimiter
from lanes.stores.prefixes import PrefixStore
from lanes.stores.replication import Replication, Unreplicated
from lanes.stores.streams import StreamStore


@dataclass(frozen=True)
class Stores:
    lane_state: LaneStateStore
    limiter: RateLimiter
    jobs: JobStore
    counter: RotationCounter
    frame: StepFrame
    ledger: LedgerQueue
    cache: ResponseCache
    budget: BudgetStore
    prefixes: PrefixStore
    batches: BatchStore
    streams: StreamStore
    replication: Replication = field(default_factory=Unreplicated)
