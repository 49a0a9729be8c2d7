"""Blocking work of ``lanes mcp``, in bounded pools of daemon threads.

The MCP SDK reads stdin and writes stdout through anyio's default thread pool; a tool that
blocked a thread of that pool per waiting job would, past its 40 threads, leave no thread to
read the next request (not even ``list_models``). So the tools never use it: quick calls
(route, submit, a result lookup) share a small pool of their own, and waits on jobs another,
``max_waits`` threads at most; a call over the bound waits its turn without a thread.

The threads are daemons, so the server exits at once however long a wait has left. A thread
holds its place in the pool until it ends, even when its call was cancelled, so the bound
holds; a cancelled wait ends at its next slice (:data:`SLICE_S`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

from lanes.broker.handle import JobHandle
from lanes.broker.result import Result
from lanes.client import Lanes
from lanes.dispatch.waiting import FIRST_CHECK_S, Waited
from lanes.kernel.errors import JobTimeout

T = TypeVar("T")

SLICE_S = FIRST_CHECK_S + 1.0
"""A wait runs in slices this long, each checking once that a worker serves the job's lane
(the check comes :data:`lanes.dispatch.waiting.FIRST_CHECK_S` into a wait); between slices a wait
whose call was cancelled stops."""


class _Outcome(Generic[T]):
    """What a thread's function returned or raised."""

    def __init__(self) -> None:
        self.value: T | None = None
        self.error: BaseException | None = None

    def unwrap(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]  # set when error is None


class ThreadPool:
    """At most ``size`` daemon threads running blocking calls for async callers."""

    def __init__(self, size: int, name: str) -> None:
        if size < 1:
            raise ValueError(f"a thread pool needs at least 1 thread, not {size}")
        self.size = size
        self._name = name
        self._limiter = anyio.CapacityLimiter(size)

    @property
    def busy(self) -> int:
        """Threads running now."""
        return int(self._limiter.borrowed_tokens)

    async def run(self, fn: Callable[[threading.Event], T]) -> T:
        """``fn(stop)`` in a daemon thread once one of the pool's places is free. When the
        caller is cancelled, ``stop`` is set and the caller returns at once; the thread keeps
        its place until ``fn`` returns."""
        place = object()
        await self._limiter.acquire_on_behalf_of(place)
        token = anyio.lowlevel.current_token()
        done = anyio.Event()
        stop = threading.Event()
        outcome: _Outcome[T] = _Outcome()

        def finish() -> None:
            self._limiter.release_on_behalf_of(place)
            done.set()

        def body() -> None:
            try:
                outcome.value = fn(stop)
            except BaseException as exc:  # handed to the caller, raised there
                outcome.error = exc
            # The server may have stopped meanwhile: then nobody waits for this answer.
            with contextlib.suppress(anyio.RunFinishedError):
                anyio.from_thread.run_sync(finish, token=token)

        try:
            threading.Thread(target=body, name=self._name, daemon=True).start()
        except RuntimeError:  # the system has no thread to give
            self._limiter.release_on_behalf_of(place)
            raise
        try:
            await done.wait()
        finally:
            stop.set()
        return outcome.unwrap()


def wait_result(lanes: Lanes, handle: JobHandle, deadline: float, stop: threading.Event) -> Waited:
    """:meth:`Lanes.wait` for one job until ``deadline`` (``time.monotonic``), in slices:
    ends early when the job waits on a lane no worker consumes, or when ``stop`` is set."""
    while True:
        left_s = deadline - time.monotonic()
        waited = lanes.wait([handle], max(0.0, min(SLICE_S, left_s)))
        if waited.results[0] is not None or waited.no_worker is not None:
            return waited
        if stop.is_set() or left_s <= SLICE_S:
            return waited


def settle(lanes: Lanes, handle: JobHandle, waited: Waited, timeout_s: float) -> Result:
    """The job's result, or why there is none: on a lane no worker consumes the job is
    cancelled (nothing of it runs later unasked) and :class:`NoWorker` names the fix; a job
    merely slow keeps running and :class:`JobTimeout` gives its id for the ``result`` tool."""
    result = waited.results[0]
    if result is not None:
        return result
    if waited.no_worker is None:
        raise JobTimeout(
            f"job {handle.id} is not finished after {timeout_s:g} s (lane {handle.instance});"
            f" it keeps running: call `result` with job_id {handle.id!r} later"
        )
    cancelled = lanes.cancel([handle], str(waited.no_worker))
    if cancelled and not cancelled[0].ended:
        found = lanes.stores.jobs.result(handle.id)  # it finished while being cancelled
        if found is not None:
            return found
    raise waited.no_worker.noting(f"; job {handle.id} cancelled")
