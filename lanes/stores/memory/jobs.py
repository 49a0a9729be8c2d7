"""Job state in dicts (:class:`lanes.stores.jobs.JobStore`), with the semantics of the Redis
store: for tests and one process without Redis. Thread-safe. ``clock`` returns epoch seconds.
Nothing expires: a process's lifetime is its TTL."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from lanes.broker.result import Result
from lanes.stores.jobs import Cancelled, Claim, PendingEntry, Tracked


class MemoryJobStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._idempotency: dict[str, tuple[str, str]] = {}
        self._owners: dict[str, str] = {}
        self._pending: dict[str, PendingEntry] = {}
        self._since: dict[str, float] = {}
        self._hops: dict[str, int] = {}
        self._results: dict[str, Result] = {}
        self._charges: dict[str, dict[str, float]] = {}
        self._calls: dict[str, dict[str, int]] = {}
        self._cancelled: set[str] = set()

    def track(
        self,
        job_id: str,
        fingerprint: str,
        queue: str,
        envelope: dict[str, Any],
        idempotency_key: str | None = None,
    ) -> Tracked:
        with self._lock:  # one step, as submit.lua is: two submits cannot both be new
            held = self._idempotency.get(idempotency_key) if idempotency_key else None
            if held is not None:
                same = held[1] == fingerprint
                return Tracked(Claim.KEY_SAME if same else Claim.KEY_CONFLICT, held[0])
            if self._owners.setdefault(job_id, fingerprint) != fingerprint:
                return Tracked(Claim.CONFLICT, job_id)
            if job_id in self._since or job_id in self._results:
                return Tracked(Claim.SAME, job_id)
            if idempotency_key:
                self._idempotency[idempotency_key] = (job_id, fingerprint)
            self._put(job_id, queue, envelope)
            return Tracked(Claim.NEW, job_id)

    def untrack(self, job_id: str, idempotency_key: str | None = None) -> None:
        with self._lock:
            self._forget(job_id)
            self._owners.pop(job_id, None)
            if idempotency_key and self._idempotency.get(idempotency_key, ("",))[0] == job_id:
                del self._idempotency[idempotency_key]

    def hand_on(self, job_id: str, hop: int, queue: str, envelope: dict[str, Any]) -> bool:
        with self._lock:
            if hop <= self._hops.get(job_id, -1):
                return False
            self._hops[job_id] = hop
            self._put(job_id, queue, envelope)
            return True

    def _put(self, job_id: str, queue: str, envelope: dict[str, Any]) -> None:
        self._pending[job_id] = {"queue": queue, "envelope": envelope}
        self._since[job_id] = self._clock()

    def is_stale(self, job_id: str, hop: int) -> bool:
        with self._lock:
            mark = self._hops.get(job_id)
        return mark is not None and hop <= mark

    def result(self, job_id: str) -> Result | None:
        with self._lock:
            return self._results.get(job_id)

    def announce(self, results: Sequence[Result]) -> None:
        return None  # waiters read the results themselves

    def record(self, result: Result) -> Result:
        with self._lock:
            standing = self._results.setdefault(result.job_id, result)
            self._forget(result.job_id)
            return standing

    def _forget(self, job_id: str) -> None:
        self._pending.pop(job_id, None)
        self._since.pop(job_id, None)

    def charge(self, job_id: str, step: int, attempt: int, cost_usd: float) -> bool:
        with self._lock:
            book = self._charges.setdefault(job_id, {})
            key = f"{step}:{attempt}"
            if key in book:
                return False
            book[key] = cost_usd
            return True

    def charges(self, job_id: str) -> dict[str, float]:
        with self._lock:
            return dict(self._charges.get(job_id, {}))

    def next_call(self, job_id: str, step: int, attempt: int) -> int:
        with self._lock:
            if job_id in self._cancelled:
                return 0
            calls = self._calls.setdefault(job_id, {})
            key = f"{step}:{attempt}"
            calls[key] = calls.get(key, 0) + 1
            return calls[key]

    def results(self, job_ids: Sequence[str]) -> list[Result | None]:
        with self._lock:
            return [self._results.get(job_id) for job_id in job_ids]

    def waiting_on(self, job_ids: Sequence[str]) -> dict[str, str]:
        with self._lock:
            return {j: self._pending[j]["queue"] for j in job_ids if j in self._pending}

    def backlog(self) -> dict[str, int]:
        with self._lock:
            return dict(Counter(str(entry["queue"]) for entry in self._pending.values()))

    def cancel(self, failures: Sequence[Result]) -> list[Cancelled]:
        done = []
        with self._lock:
            for failure in failures:
                job_id = failure.job_id
                self._cancelled.add(job_id)
                ended = self._results.setdefault(job_id, failure) is failure
                self._forget(job_id)
                started = sum(self._calls.get(job_id, {}).values())
                done.append(Cancelled(job_id, ended, started))
        return done

    def quiet_since(self, cutoff_s: float) -> dict[str, PendingEntry]:
        with self._lock:
            return {j: self._pending[j] for j, at in self._since.items() if at <= cutoff_s}

    def touch(self, job_ids: Iterable[str], now_s: float) -> None:
        with self._lock:
            for job_id in job_ids:
                if job_id in self._since:
                    self._since[job_id] = now_s

    def now_s(self) -> float:
        return self._clock()
