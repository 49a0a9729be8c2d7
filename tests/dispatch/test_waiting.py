"""Waiting for many jobs under one deadline (in-memory job store)."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Sequence

from celery.result import AsyncResult

from lanes.broker.handle import JobHandle
from lanes.broker.result import Result
from lanes.dispatch.waiting import Waiter, collect
from lanes.kernel.errors import NoWorker
from lanes.stores.jobs import Cancelled
from lanes.stores.memory.jobs import MemoryJobStore


def _ok(job_id: str) -> Result:
    return Result(job_id=job_id, status="ok", instance="zai", model="glm-4.6", step=0,
                  attempt=0, text="done")  # fmt: skip


def _handles(*ids: str) -> list[JobHandle]:
    return [JobHandle(AsyncResult(job_id), decision=None, instance="zai") for job_id in ids]


def _nobody(lanes: Collection[str]) -> set[str]:
    return set()


def test_waiting_returns_each_result_in_order_as_it_arrives() -> None:
    jobs = MemoryJobStore()
    jobs.record(_ok("a"))
    timer = threading.Timer(0.1, lambda: jobs.record(_ok("b")))
    timer.start()
    waited = Waiter(jobs).wait(["b", "a"], time.monotonic() + 5)
    assert waited.results == [_ok("b"), _ok("a")] and waited.no_worker is None


def test_waiting_gives_none_for_jobs_late_at_the_deadline() -> None:
    jobs = MemoryJobStore()
    jobs.record(_ok("a"))
    waited = Waiter(jobs).wait(["a", "late"], time.monotonic() + 0.1)
    assert waited.results == [_ok("a"), None] and waited.unfinished == [1]


def test_waiting_stops_early_when_no_worker_consumes_the_lane() -> None:
    jobs = MemoryJobStore()
    jobs.track("q", "fp", "koala", {})
    waiter = Waiter(jobs, served=_nobody, first_check_s=0.05)
    started = time.monotonic()
    waited = waiter.wait(["q"], started + 30)
    assert time.monotonic() - started < 5
    assert isinstance(waited.no_worker, NoWorker) and waited.no_worker.lanes == ["koala"]
    assert "lanes worker koala" in str(waited.no_worker)


def test_waiting_checks_only_lanes_with_waiting_jobs() -> None:
    jobs = MemoryJobStore()
    jobs.track("q", "fp", "zai", {})
    asked: list[set[str]] = []

    def served(lanes: Collection[str]) -> set[str]:
        asked.append(set(lanes))
        return set(lanes)

    waited = Waiter(jobs, served=served, first_check_s=0.0).wait(["q"], time.monotonic() + 0.2)
    assert waited.no_worker is None and asked and all(a == {"zai"} for a in asked)


def test_collect_cancels_the_late_jobs_and_keeps_the_finished() -> None:
    jobs = MemoryJobStore()
    jobs.record(_ok("a"))
    jobs.track("late", "fp", "zai", {})
    jobs.next_call("late", 0, 0)  # its call is running

    def cancel(handles: Sequence[JobHandle], reason: str) -> list[Cancelled]:
        from lanes.broker.handle import given_up

        return jobs.cancel([given_up(h, reason) for h in handles])

    got = collect(Waiter(jobs), _handles("a", "late"), time.monotonic() + 0.1, cancel, "slow")
    assert got.results == [_ok("a"), None]
    assert [c.job_id for c in got.cancelled] == ["late"] and got.calls_in_flight == 1
    standing = jobs.result("late")
    assert standing is not None and standing.error == "cancelled: slow"
    assert jobs.next_call("late", 0, 1) == 0
