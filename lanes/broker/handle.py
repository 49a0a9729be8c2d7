"""A caller's handle on a submitted job: wait for its one :class:`Result`, sync or async."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeout
from celery.result import AsyncResult
from pydantic import ValidationError

from lanes.broker.result import Result
from lanes.broker.stream import FIRST, StreamEvent, StreamReader
from lanes.kernel.errors import JobFailed, JobTimeout
from lanes.router.decision import Decision

STREAM_POLL_S = 0.25
"""How long one read of a stream waits for an event before checking the job's result."""


class JobHandle:
    """``decision`` is the routing decision (None when an idempotency key returned an earlier
    job); ``instance`` the lane the first step was sent to."""

    def __init__(
        self,
        result: AsyncResult,
        *,
        decision: Decision | None,
        instance: str | None = None,
        streams: StreamReader | None = None,
    ) -> None:
        self._result = result
        self.decision = decision
        self.instance = instance
        self._streams = streams

    @property
    def id(self) -> str:
        return str(self._result.id)

    def ready(self) -> bool:
        return bool(self._result.ready())

    def get(self, timeout_s: float | None = None, *, raise_on_failure: bool = True) -> Result:
        """Block until the job's result; :class:`JobFailed` if it failed (unless told not to),
        :class:`JobTimeout` after ``timeout_s``."""
        try:
            value = self._result.get(timeout=timeout_s, propagate=True, interval=0.05)
        except CeleryTimeout as exc:
            raise JobTimeout(f"job {self.id} not finished after {timeout_s}s") from exc
        return _checked(self.id, value, raise_on_failure)

    async def wait(
        self, timeout_s: float | None = None, *, raise_on_failure: bool = True
    ) -> Result:
        """Await the job's result without blocking the event loop."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        delay_s = 0.02
        while not self._result.ready():
            if deadline is not None and time.monotonic() > deadline:
                raise JobTimeout(f"job {self.id} not finished after {timeout_s}s")
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 1.5, 0.5)
        return self.get(timeout_s=1, raise_on_failure=raise_on_failure)

    def stream(self, timeout_s: float | None = None) -> Iterator[StreamEvent]:
        """The job's answer as it is generated, for a job submitted with ``stream: true``:
        ``start``, ``text`` pieces, a ``restart`` when a retry or a fallback starts over (the
        text before it is void), and last ``end`` (then :meth:`get` gives the result). A
        reader that comes late reads from the start; a job answered without a streamed call
        (from the response cache) gives its whole text in one piece. :class:`JobTimeout`
        after ``timeout_s``."""
        if self._streams is None:
            raise JobFailed(f"job {self.id}: this handle cannot read streams")
        return _follow(self, self._streams, timeout_s)

    async def astream(self, timeout_s: float | None = None) -> AsyncIterator[StreamEvent]:
        """:meth:`stream` without blocking the event loop (each read runs in a thread)."""
        events = self.stream(timeout_s)
        while True:
            event = await asyncio.to_thread(next, events, None)
            if event is None:
                return
            yield event


def _follow(
    handle: JobHandle, streams: StreamReader, timeout_s: float | None
) -> Iterator[StreamEvent]:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    after, texts, ended = FIRST, 0, False
    while True:
        # Once the result stands, one last read takes what reached the stream meanwhile.
        found = streams.read(handle.id, after, 0.001 if ended else STREAM_POLL_S)
        for position, event in found:
            after = position
            texts += event.kind == "text"
            yield event
            if event.kind == "end":
                return
        if ended:
            yield from _closing(handle, texts)
            return
        ended = not found and handle.ready()
        if deadline is not None and time.monotonic() > deadline:
            raise JobTimeout(f"job {handle.id} not finished after {timeout_s}s")


def _closing(handle: JobHandle, texts: int) -> Iterator[StreamEvent]:
    """The end of a job whose result stands but whose stream did not say ``end``: the
    answer whole if none of it was streamed, then ``end``."""
    result = handle.get(timeout_s=1, raise_on_failure=False)
    if not texts and result.ok and result.text:
        yield StreamEvent(kind="text", text=result.text)
    yield StreamEvent(kind="end", instance=result.instance, model=result.model,
                      status=result.status)  # fmt: skip


def given_up(handle: JobHandle, reason: str) -> Result:
    """The failed result of a job its caller gives up on (:meth:`Dispatcher.cancel`)."""
    decision = handle.decision
    return Result(
        job_id=handle.id,
        status="failed",
        instance=handle.instance or (decision.instance if decision else ""),
        model=decision.model if decision else "",
        step=0,
        attempt=0,
        finished_at=time.time(),
        error=f"cancelled: {reason}",
    )


def wait_all(handles: Iterable[JobHandle], deadline: float) -> list[Result | None]:
    """Every handle's result, in order, waited for until ``deadline`` (``time.monotonic``);
    None for a job not finished by then. A failed job is a result, not an exception."""
    results: list[Result | None] = []
    for handle in handles:
        try:
            left = max(0.1, deadline - time.monotonic())
            results.append(handle.get(timeout_s=left, raise_on_failure=False))
        except JobTimeout:
            results.append(None)
    return results


def _checked(job_id: str, value: Any, raise_on_failure: bool) -> Result:
    try:
        result = Result.model_validate(value)
    except ValidationError as exc:
        raise JobFailed(f"job {job_id} returned an unexpected result: {value!r:.200}") from exc
    if raise_on_failure and not result.ok:
        raise JobFailed(f"job {job_id} failed: {result.error}", result=result)
    return result
