"""The rate limiter's contract: value types, the :class:`RateLimiter` protocol, and how to wait.

Limits apply per instance (one provider account) and model class (``"all"`` when the provider
pools its limits across models). Requests, input tokens and output tokens per minute are token
buckets with continuous refill: capacity is the per-minute limit, refill is limit/60 per second,
so a burst of a full minute's worth is possible once, never once per calendar minute.
Concurrency is counted in *leases* per instance, shared by its model classes; a lease expires
after its TTL, so the slot of a worker killed mid-call comes back by itself.

A call goes: :meth:`RateLimiter.try_acquire` reserves 1 request, the estimated input tokens and
the job's ``max_tokens`` as output tokens, plus one lease, all or nothing. After the call,
:meth:`RateLimiter.settle` charges what was actually used (refunding unused output tokens,
charging extra if the estimate was low, which can push a bucket below zero and delay later
calls) and drops the lease. A call that never reached the provider is ended with
:meth:`RateLimiter.release`. Settling or releasing twice changes nothing the second time.

How a worker waits for capacity
-------------------------------
A denial carries ``wait_s``: the time until the reservation should fit given the refill rates
(or until the earliest lease expires, for concurrency). It is an upper bound in practice, since
other workers settle and refund early, and it is capped at :data:`WAIT_CAP_S`. The worker sleeps
in short slices (at most :data:`SLEEP_SLICE_S`) inside the task and asks again, up to a maximum
total wait; :func:`acquire_blocking` does exactly that. It does **not** retry the Celery task
with a long ``countdown``: the broker holds such messages unacknowledged and redelivers them
after the visibility timeout, so the job would run twice. When the maximum wait runs out,
:func:`acquire_blocking` raises :class:`CapacityWait`, a control-flow signal (not a
:class:`lanes.kernel.errors.LanesError`): the caller decides to route elsewhere or re-enqueue.

A reservation larger than a bucket's capacity can never fit: :class:`ReservationTooLarge`
(a :class:`lanes.kernel.errors.RequestTooLarge`) is raised at once instead of waiting forever.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypedDict

from lanes.kernel.config.models import Limits
from lanes.kernel.errors import RequestTooLarge

WAIT_CAP_S = 60.0
"""Longest ``wait_s`` a denial reports; ask again after it."""
SLEEP_SLICE_S = 1.0
"""Longest single sleep of :func:`acquire_blocking`."""
MIN_SLEEP_S = 0.01
"""Shortest single sleep of :func:`acquire_blocking`, so it never spins."""
SETTLE_GRACE_S = 3600.0
"""How long after its lease expires a reservation can still be settled (and corrected)."""


class Reason(StrEnum):
    """Which limit denied a reservation."""

    REQUESTS = "requests"
    INPUT_TOKENS = "input_tokens"
    OUTPUT_TOKENS = "output_tokens"
    CONCURRENCY = "concurrency"


@dataclass(frozen=True)
class Reservation:
    """What one granted :meth:`RateLimiter.try_acquire` holds; hand it to settle or release."""

    instance: str
    model_class: str
    lease_id: str
    limits: Limits
    input_tokens: int
    output_tokens: int
    lease_ttl_s: float


@dataclass(frozen=True)
class Acquired:
    """A grant. ``granted_at_s`` is the limiter's clock at the grant: Redis TIME in epoch
    seconds for :class:`RedisLimiter`, the injected clock for :class:`MemoryLimiter`."""

    reservation: Reservation
    granted_at_s: float


@dataclass(frozen=True)
class Denied:
    """Nothing was taken. Ask again after ``wait_s`` seconds (capped at :data:`WAIT_CAP_S`)."""

    reason: Reason
    wait_s: float


@dataclass(frozen=True)
class Settled:
    """Outcome of settle/release. ``applied`` is False when the reservation had already ended
    (settled, released, or its marker expired :data:`SETTLE_GRACE_S` after the lease)."""

    applied: bool
    at_s: float


class UsageSnapshot(TypedDict):
    """Tokens available now per bucket (None: unlimited; may be negative) and live leases."""

    requests: float | None
    input_tokens: float | None
    output_tokens: float | None
    leases_in_use: int


class ReservationTooLarge(RequestTooLarge):
    """The reservation exceeds a bucket's whole capacity, so it can never be granted."""

    def __init__(self, instance: str, reason: Reason, requested: int, limit: int) -> None:
        self.instance = instance
        self.reason = reason
        self.requested = requested
        self.limit = limit
        super().__init__(
            f"{instance}: reserving {requested} {reason} exceeds the limit of {limit} per minute;"
            " lower the estimate or max_tokens, or route to a lane with a higher limit"
        )


class CapacityWait(Exception):
    """Control flow: no capacity within the allowed wait. Not a failure of the job.

    ``wait_s`` is the last denial's estimate of how much longer it would take.
    """

    def __init__(self, reason: Reason, wait_s: float) -> None:
        self.reason = reason
        self.wait_s = wait_s
        super().__init__(f"no capacity ({reason}); about {wait_s:.2f} s more needed")


class RateLimiter(Protocol):
    def try_acquire(
        self,
        instance: str,
        model_class: str,
        limits: Limits,
        input_tokens: int,
        output_tokens: int,
        lease_ttl_s: float,
        reserve: float = 0.0,
    ) -> Acquired | Denied:
        """Reserve 1 request, the tokens and a lease of ``lease_ttl_s`` seconds, all or nothing.

        ``reserve``: the share of each limit that must stay free after this reservation (of
        concurrency, the slots it rounds up to, one left at least): batch work leaves it to
        interactive work.

        Raises :class:`ReservationTooLarge` when a token count exceeds its bucket's capacity,
        ``ValueError`` for negative token counts or a non-positive TTL.
        """
        ...

    def settle(self, reservation: Reservation, input_tokens: int, output_tokens: int) -> Settled:
        """Charge actual usage instead of the reservation and drop the lease. Idempotent."""
        ...

    def release(self, reservation: Reservation, *, refund: bool = True) -> Settled:
        """Drop the lease. ``refund``: the call never reached the provider, give everything
        back (request included); otherwise the reservation stays charged. Idempotent."""
        ...

    def usage(self, instance: str, model_class: str, limits: Limits) -> UsageSnapshot:
        """Read-only snapshot for ``lanes status``."""
        ...


def check_tokens(input_tokens: int, output_tokens: int) -> None:
    """Raise ``ValueError`` for negative token counts."""
    if input_tokens < 0 or output_tokens < 0:
        raise ValueError(f"token counts must be >= 0, got {input_tokens}, {output_tokens}")


def check_request(
    instance: str, limits: Limits, input_tokens: int, output_tokens: int, lease_ttl_s: float
) -> None:
    """What every limiter checks before reserving: ``ValueError`` for arguments no limiter
    accepts, :class:`ReservationTooLarge` when a token count exceeds its bucket's capacity."""
    check_tokens(input_tokens, output_tokens)
    if not lease_ttl_s > 0 or math.isinf(lease_ttl_s):
        raise ValueError(f"lease_ttl_s must be a positive finite number, got {lease_ttl_s}")
    if 0 < limits.input_tokens_per_min < input_tokens:
        raise ReservationTooLarge(
            instance, Reason.INPUT_TOKENS, input_tokens, limits.input_tokens_per_min
        )
    if 0 < limits.output_tokens_per_min < output_tokens:
        raise ReservationTooLarge(
            instance, Reason.OUTPUT_TOKENS, output_tokens, limits.output_tokens_per_min
        )


def acquire_blocking(
    limiter: RateLimiter,
    instance: str,
    model_class: str,
    limits: Limits,
    input_tokens: int,
    output_tokens: int,
    lease_ttl_s: float,
    *,
    max_wait_s: float,
    sleep: Callable[[float], None] = time.sleep,
    reserve: float = 0.0,
) -> Acquired:
    """Acquire, sleeping in slices of at most :data:`SLEEP_SLICE_S` while denied.

    ``max_wait_s`` bounds the total time slept (round trips add a little on top); when it is
    spent, :class:`CapacityWait` is raised. :class:`ReservationTooLarge` propagates at once.
    ``reserve``: see :meth:`RateLimiter.try_acquire`.
    """
    slept_s = 0.0
    while True:
        result = limiter.try_acquire(
            instance, model_class, limits, input_tokens, output_tokens, lease_ttl_s, reserve
        )
        if isinstance(result, Acquired):
            return result
        left_s = max_wait_s - slept_s
        if left_s <= 0:
            raise CapacityWait(result.reason, result.wait_s)
        step_s = min(max(result.wait_s, MIN_SLEEP_S), SLEEP_SLICE_S, left_s)
        sleep(step_s)
        slept_s += step_s
