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
==================  ===========================================  ============================

:class:`Stores` bundles one of each; build it with
:func:`broker.stores.redis.redis_stores` (every process of a deployment shares it) or
:func:`broker.stores.memory.memory_stores` (one process: tests, routing on a laptop). The
dispatcher and the workers receive a :class:`Stores` and never build one themselves. The
coming ledger, budget counters and response cache join here the same way: a port module, a
Redis (or SQL) implementation and an in-memory one.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.stores.frame import StepFrame
from broker.stores.jobs import JobStore
from broker.stores.lane_state import LaneStateStore
from broker.stores.limiter import RateLimiter
from router.strategies import RotationCounter


@dataclass(frozen=True)
class Stores:
    lane_state: LaneStateStore
    limiter: RateLimiter
    jobs: JobStore
    counter: RotationCounter
    frame: StepFrame
