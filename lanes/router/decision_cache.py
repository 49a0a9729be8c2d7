"""An in-memory cache of decisions for identical normalised tasks (``routing.cache_ttl_s``).

The key is the task, not the job: the text lowercased with whitespace collapsed (hashed), plus
everything else that changes a decision (max_tokens, hints, the job's ``vital``, pins, chain,
strategy, constraints, weights). The cache is bounded (least recently used entries go first)
and reads its clock through an injectable function, so tests need not sleep.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from lanes.kernel.config.models import Weights
from lanes.router.decision import Decision
from lanes.router.job import Job

DEFAULT_MAX_ENTRIES = 4096


def cache_key(job: Job, strategy: str, weights: Weights | None) -> Hashable:
    """What identifies a task for caching; two jobs with equal keys get the same decision."""
    text = " ".join(job.text().lower().split())
    digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
    limits = job.constraints
    return (
        digest,
        job.max_tokens,
        job.task_type,
        job.complexity,
        job.vital,
        job.instance,
        job.model,
        job.chain,
        strategy,
        limits.max_cost_usd,
        limits.min_quality,
        limits.max_latency_s,
        job.priority,
        job.deadline_s,
        weights,
    )


class DecisionCache:
    """Decisions by task key, each kept ``ttl_s`` seconds; at most ``max_entries`` of them."""

    def __init__(
        self,
        ttl_s: float,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Decision]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Decision | None:
        """The live decision for ``key``, or None (expired entries are dropped)."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires_at, decision = entry
            if now >= expires_at:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return decision

    def put(self, key: Hashable, decision: Decision) -> None:
        expires_at = self._clock() + self.ttl_s
        with self._lock:
            self._entries[key] = (expires_at, decision)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
