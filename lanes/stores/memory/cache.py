"""The response cache in a dict (:class:`lanes.stores.cache.ResponseCache`), with the
semantics of the Redis cache: for tests and one process without Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from lanes.stores.cache import CachedAnswer, check_ttl


class MemoryResponseCache:
    """:class:`ResponseCache` in a dict, same semantics as :class:`RedisResponseCache`.

    ``clock`` returns seconds and must not go backwards; an entry put at ``t`` with ``ttl_s``
    is gone from ``t + ttl_s`` on. Expired entries are dropped when read, when cleared, and
    in a sweep each time the dict has doubled since the last one (so memory stays bounded by
    about twice the live entries). Thread-safe; one process only.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, CachedAnswer]] = {}
        self._sweep_at_size = 1

    def get(self, key: str) -> CachedAnswer | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires_at, answer = entry
            if self._clock() >= expires_at:
                del self._entries[key]
                return None
            return answer

    def put(self, key: str, answer: CachedAnswer, ttl_s: int) -> None:
        check_ttl(ttl_s)
        with self._lock:
            now = self._clock()
            self._entries[key] = (now + ttl_s, answer)
            if len(self._entries) >= self._sweep_at_size:
                self._sweep(now)

    def clear(self) -> int:
        with self._lock:
            self._sweep(self._clock())
            removed = len(self._entries)
            self._entries.clear()
            return removed

    def _sweep(self, now: float) -> None:
        """Drop expired entries; the next sweep waits until the dict has doubled."""
        self._entries = {k: e for k, e in self._entries.items() if now < e[0]}
        self._sweep_at_size = 2 * len(self._entries) + 1
