"""A caller's handle on a submitted job: wait for its one result, sync or async."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeout
from celery.result import AsyncResult

from kernel.errors import JobFailed, JobTimeout
from router.decision import Decision


class JobHandle:
    def __init__(
        self, result: AsyncResult, *, decision: Decision | None, instance: str | None = None
    ) -> None:
        self._result = result
        self.decision = decision
        self.instance = instance

    @property
    def id(self) -> str:
        return str(self._result.id)

    def ready(self) -> bool:
        return bool(self._result.ready())

    def get(
        self, timeout_s: float | None = None, *, raise_on_failure: bool = True
    ) -> dict[str, Any]:
        """Block until the job's result; :class:`JobFailed` if it failed (unless told not to)."""
        try:
            value = self._result.get(timeout=timeout_s, propagate=True, interval=0.05)
        except CeleryTimeout as exc:
            raise JobTimeout(f"job {self.id} not finished after {timeout_s}s") from exc
        return _checked(self.id, value, raise_on_failure)

    async def wait(
        self, timeout_s: float | None = None, *, raise_on_failure: bool = True
    ) -> dict[str, Any]:
        """Await the job's result without blocking the event loop."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        delay_s = 0.02
        while not self._result.ready():
            if deadline is not None and time.monotonic() > deadline:
                raise JobTimeout(f"job {self.id} not finished after {timeout_s}s")
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 1.5, 0.5)
        return self.get(timeout_s=1, raise_on_failure=raise_on_failure)


def _checked(job_id: str, value: Any, raise_on_failure: bool) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise JobFailed(f"job {job_id} returned an unexpected result: {value!r}")
    if raise_on_failure and value.get("status") != "ok":
        raise JobFailed(f"job {job_id} failed: {value.get('error')}", result=value)
    return value
