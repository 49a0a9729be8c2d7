"""The in-memory implementations of the store ports: one process, an injectable clock."""

from __future__ import annotations

import time
from collections.abc import Callable

from lanes.router.strategies import LocalCounter
from lanes.stores import Stores
from lanes.stores.frame import SequentialFrame
from lanes.stores.memory.batches import MemoryBatches
from lanes.stores.memory.budget import MemoryBudgetStore
from lanes.stores.memory.cache import MemoryResponseCache
from lanes.stores.memory.jobs import MemoryJobStore
from lanes.stores.memory.lane_state import MemoryLaneState
from lanes.stores.memory.ledger import MemoryLedgerSink
from lanes.stores.memory.limiter import MemoryLimiter
from lanes.stores.memory.prefixes import MemoryPrefixes
from lanes.stores.memory.streams import MemoryStreams


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
        prefixes=MemoryPrefixes(clock),
        batches=MemoryBatches(),
        streams=MemoryStreams(),
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
