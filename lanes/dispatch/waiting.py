"""Waiting for many jobs under one deadline, and saying within seconds when no worker can
answer them.

Every round reads the results of the jobs still waiting in one round trip
(:meth:`lanes.stores.jobs.JobStore.results`), so a thousand jobs cost what one does, and the
deadline is kept to a round (:data:`POLL_MAX_S`), however many jobs are late. After
:data:`FIRST_CHECK_S` without every answer, and every :data:`RECHECK_S` after that, the lanes
the unfinished jobs wait on are checked for a worker (:mod:`lanes.stores.consumers`): a lane nobody
consumes ends the wait at once, with a :class:`lanes.kernel.errors.NoWorker` saying so, instead of
waiting out the deadline.

What to do with the jobs a caller gives up on (cancel them, or leave them for a later run) is
the caller's choice: see :meth:`lanes.dispatch.dispatcher.Dispatcher.cancel`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from lanes.broker.handle import JobHandle
from lanes.broker.result import Result
from lanes.kernel.errors import NoWorker
from lanes.stores.jobs import Cancelled, JobStore

FIRST_CHECK_S = 5.0
"""How long a caller waits before it checks that the jobs' lanes have workers."""
RECHECK_S = 30.0
"""How often it checks again while it waits (a worker may stop meanwhile)."""
POLL_MIN_S = 0.02
POLL_MAX_S = 0.2
"""Rounds start fast (most answers take a second or two) and slow down to this."""


@dataclass(frozen=True)
class Waited:
    """What a wait found: every job's result, in order (None: not finished), and, when the
    wait stopped early because jobs wait on lanes no worker consumes, why."""

    results: list[Result | None]
    no_worker: NoWorker | None = None

    @property
    def unfinished(self) -> list[int]:
        """Indexes of the jobs without a result."""
        return [i for i, result in enumerate(self.results) if result is None]


@dataclass
class Waiter:
    """``served(lanes)`` returns which of ``lanes`` some worker consumes; None: never check."""

    jobs: JobStore
    served: Callable[[Collection[str]], set[str]] | None = None
    first_check_s: float = FIRST_CHECK_S
    recheck_s: float = RECHECK_S

    def wait(self, job_ids: Sequence[str], deadline: float) -> Waited:
        """Every job's result, in order, waited for until ``deadline`` (``time.monotonic``),
        or until the jobs still waiting wait on a lane no worker consumes. A failed job is a
        result, not an exception."""
        results: list[Result | None] = [None] * len(job_ids)
        left = list(range(len(job_ids)))
        check_at = time.monotonic() + self.first_check_s
        delay_s = POLL_MIN_S
        while left:
            found = self.jobs.results([job_ids[i] for i in left])
            for i, result in zip(left, found, strict=True):
                results[i] = result
            left = [i for i, result in zip(left, found, strict=True) if result is None]
            now = time.monotonic()
            if not left or now >= deadline:
                break
            if self.served is not None and now >= check_at:
                idle = self.unserved([job_ids[i] for i in left])
                if idle is not None:
                    return Waited(results, idle)
                check_at = now + self.recheck_s
            time.sleep(max(0.0, min(delay_s, deadline - now)))
            delay_s = min(delay_s * 1.5, POLL_MAX_S)
        return Waited(results)

    def unserved(self, job_ids: Sequence[str]) -> NoWorker | None:
        """Why some of ``job_ids`` cannot finish: they wait on lanes no worker consumes."""
        if self.served is None:
            return None
        waiting = self.jobs.waiting_on(job_ids)
        lanes = set(waiting.values())
        idle = sorted(lanes - self.served(lanes))
        if not idle:
            return None
        return NoWorker(idle, sum(1 for lane in waiting.values() if lane in idle))


@dataclass(frozen=True)
class Collected:
    """What :func:`collect` got: the results (None for a job given up on) and the jobs given
    up on, with what they had started."""

    results: list[Result | None]
    cancelled: list[Cancelled]
    no_worker: NoWorker | None = None

    @property
    def calls_in_flight(self) -> int:
        """Provider calls of cancelled jobs that had started: they finish and are billed."""
        return sum(item.calls for item in self.cancelled if item.ended)


def collect(
    waiter: Waiter,
    handles: Sequence[JobHandle],
    deadline: float,
    cancel: Callable[[Sequence[JobHandle], str], list[Cancelled]],
    reason: str,
) -> Collected:
    """Wait for ``handles`` until ``deadline``; then give up on the unfinished ones
    (``cancel`` them with ``reason``), at once if they wait on lanes no worker consumes. A job
    that finished while it was being cancelled keeps its result."""
    waited = waiter.wait([handle.id for handle in handles], deadline)
    late = waited.unfinished
    if not late:
        return Collected(waited.results, [])
    why = str(waited.no_worker) if waited.no_worker is not None else reason
    cancelled = cancel([handles[i] for i in late], why)
    results = list(waited.results)
    finished = [i for i, item in zip(late, cancelled, strict=True) if not item.ended]
    for i, result in zip(finished, waiter.jobs.results([handles[i].id for i in finished]),
                         strict=True):  # fmt: skip
        results[i] = result
    return Collected(results, [item for item in cancelled if item.ended], waited.no_worker)
