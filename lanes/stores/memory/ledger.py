"""The ledger hand-off queue in this process's memory (tests; routing without Redis)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from lanes.stores.ledger import LedgerEvent, event_json


class MemoryLedgerSink:
    """A list of JSON events with the drainer's side of :class:`RedisLedgerSink`."""

    def __init__(self) -> None:
        self._events: list[str] = []
        self._lock = threading.Lock()
        self._held = False

    def emit(self, events: Sequence[LedgerEvent]) -> None:
        with self._lock:
            self._events.extend(event_json(e) for e in events)

    def oldest(self, count: int) -> list[str]:
        with self._lock:
            return self._events[:count]

    def drop_oldest(self, count: int) -> None:
        with self._lock:
            del self._events[:count]

    def backlog(self) -> int:
        with self._lock:
            return len(self._events)

    def lock(self, ttl_s: float) -> str | None:
        with self._lock:
            if self._held:
                return None
            self._held = True
            return "held"

    def unlock(self, token: str) -> None:
        with self._lock:
            self._held = False
