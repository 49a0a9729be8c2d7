"""The in-memory implementations of the store ports: one process, an injectable clock."""

from __future__ import annotations

import time
from collections.abc import Callable

from broker.stores import Stores
from broker.stores.frame import SequentialFrame
from broker.stores.memory.jobs import MemoryJobStore
from broker.stores.memory.lane_state import MemoryLaneState
from broker.stores.memory.limiter import MemoryLimiter
from router.strategies import LocalCounter


def memory_stores(clock: Callable[[], float] = time.time) -> Stores:
    """Every store in this process's memory, on ``clock`` (epoch seconds, never backwards)."""
    jobs = MemoryJobStore(clock)
    lane_state = MemoryLaneState(clock)
    limiter = MemoryLimiter(clock)
    return Stores(
        lane_state=lane_state,
        limiter=limiter,
        jobs=jobs,
        counter=LocalCounter(),
        frame=SequentialFrame(jobs, lane_state, limiter),
    )


__all__ = ["MemoryJobStore", "MemoryLaneState", "MemoryLimiter", "memory_stores"]
