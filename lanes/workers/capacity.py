"""Getting capacity for one call without holding a worker hostage.

A worker thread may sleep for capacity (``retry.wait_slice_s`` at most) only while fewer than
half of the process's threads are already sleeping for the same instance; otherwise, and
once the slice is spent, :class:`~lanes.stores.limiter.CapacityWait` tells the caller to re-queue
the job with a short countdown. So a saturated lane never takes every thread of a worker that
also serves other lanes, and no countdown is long enough to meet the visibility timeout.
"""

from __future__ import annotations

import functools
import threading
import time

from lanes.broker import counters as metrics
from lanes.kernel.config import InstanceSpec, Limits
from lanes.kernel.config.models import with_margin
from lanes.stores.limiter import Acquired, CapacityWait, RateLimiter, acquire_blocking

LEASE_MARGIN_S = 30.0
"""A lease outlives the call's timeout by this much before it is presumed dead."""


def limits_for(spec: InstanceSpec, model: str, margin: float = 0.0) -> tuple[str, Limits]:
    """(model class, limits less ``margin``) that govern ``model`` on this instance
    (:meth:`lanes.kernel.config.InstanceSpec.limits_for`, which the simulator and ``lanes status``
    read too)."""
    model_class, limits = spec.limits_for(model)
    return model_class, with_margin(limits, margin)


class CapacityGate:
    def __init__(
        self, limiter: RateLimiter, *, wait_slice_s: float, threads: int, margin: float = 0.0
    ) -> None:
        self.limiter = limiter
        self._margin = margin
        self._wait_slice_s = wait_slice_s
        self._max_waiters = max(1, threads // 2)
        self._waiters: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def acquire(
        self,
        instance: str,
        spec: InstanceSpec,
        model: str,
        input_tokens: int,
        output_tokens: int,
        *,
        reserve: float = 0.0,
    ) -> Acquired | None:
        """Reserve capacity for one call or raise CapacityWait (or ReservationTooLarge),
        leaving ``reserve`` of every limit free (batch work leaves it to interactive work).

        None when the instance has no limits at all: there is nothing to reserve or settle.
        """
        model_class, limits = limits_for(spec, model, self._margin)
        if not (
            limits.requests_per_min
            or limits.input_tokens_per_min
            or limits.output_tokens_per_min
            or limits.concurrency
        ):
            return None
        lease_ttl_s = spec.timeout_s + LEASE_MARGIN_S
        waiters = self._semaphore(instance)
        may_wait = waiters.acquire(blocking=False)
        try:
            return acquire_blocking(
                self.limiter, instance, model_class, limits, input_tokens, output_tokens,
                lease_ttl_s, max_wait_s=self._wait_slice_s if may_wait else 0.0,
                sleep=functools.partial(_sleep_counted, instance), reserve=reserve,
            )  # fmt: skip
        finally:
            if may_wait:
                waiters.release()

    def _semaphore(self, instance: str) -> threading.BoundedSemaphore:
        found = self._waiters.get(instance)
        if found is None:
            with self._lock:
                found = self._waiters.setdefault(
                    instance, threading.BoundedSemaphore(self._max_waiters)
                )
        return found


def _sleep_counted(instance: str, seconds: float) -> None:
    """Sleep for capacity, counted as a rate-limit wait of ``instance``."""
    time.sleep(seconds)
    metrics.waited_for_limits(instance, seconds)


__all__ = ["CapacityGate", "CapacityWait", "limits_for"]
