"""The in-memory implementations of the store ports: one process, an injectable clock."""

from __future__ import annotations

import time
from collections.abc import Callable

from broker.stores import Stores
from broker.stores.frame import SequentialFrame
from broker.stores.memory.budget import MemoryBudgetStore
from broker.stores.memory.cache import MemoryResponseCache
from broker.stores.memory.jobs import MemoryJobStore
from broker.stores.memory.lane_state import MemoryLaneState
from broker.stores.memory.ledger import MemoryLedgerSink
from broker.stores.memory.limiter import MemoryLimiter
from router.strategies import LocalCounter


def memory_stores(clock: Callable[[], float] = time.time) -> Stores:
    """Every store in this process's memory, on ``clock`` (epoch seconds, never backwards)."""
    jobs = MemoryJobStore(clock)
    lane_state = MemoryLaneState(clock)
    limiter = MemoryLimiter(clock)
    ledger = MemoryLedgerSink()
    return Stores(
        lane_state=lane_state,
        limiter=limiter,
        jobs=jobs,
        counter=LocalCounter(),
        frame=SequentialFrame(jobs, lane_state, limiter, ledger),
        ledger=ledger,
        cache=MemoryResponseCache(),
        budget=MemoryBudgetStore(),
    )


__all__ = [
    "MemoryBudgetStore",
    "MemoryJobStore",
    "MemoryLaneState",
    "MemoryLedgerSink",
    "MemoryLimiter",
    "MemoryResponseCache",
    "memory_stores",
]
