"""Outlasting a Redis outage (a restart, a failover) inside a worker.

Redis holds the queues, the results and every shared counter, so a worker thread that finds
it gone cannot finish its step. Failing the job would lose it, and Celery turns a failed
publish of ``retry`` into a rejection that drops the message. Instead the thread waits for
Redis to answer again, for at most ``retry.outage_s``, then carries on:

- a write after a provider call (the result, the charge, the settlement) is repeated, never
  the call, so a job that got its answer is not paid for twice;
- anything before the call, and the publishing of the job's next message, is run again from
  the start of the step, which is safe because nothing irreversible happened yet.

When Redis stays away longer, the message is left unacknowledged: the broker hands it out again
after the visibility timeout (the unacked set is in Redis, kept by its persistence).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from celery.exceptions import Reject
from kombu.exceptions import OperationalError

from lanes.kernel.errors import InfrastructureError

log = logging.getLogger("lanes.workers")

T = TypeVar("T")

OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    InfrastructureError,
    redis.RedisError,
    OperationalError,
)
"""What a Redis outage raises: our own wrapper, redis-py's errors and kombu's."""

POLL_S = 0.25
"""How often a waiting thread asks Redis whether it is back."""


def is_outage(exc: BaseException) -> bool:
    """``exc`` comes from Redis being away, directly or as the reason Celery rejected a
    message (``Task.retry`` turns a failed publish into ``Reject(exc, requeue=False)``)."""
    if isinstance(exc, Reject):
        return isinstance(exc.reason, OUTAGE_ERRORS)
    return isinstance(exc, OUTAGE_ERRORS)


def wait_for_redis(ping: Callable[[], object], deadline: float) -> bool:
    """Call ``ping`` until it stops raising an outage error (``True``) or ``deadline``
    (monotonic) passes (``False``)."""
    while True:
        try:
            ping()
            return True
        except OUTAGE_ERRORS:
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)


def outlast(ping: Callable[[], object], outage_s: float, action: str, fn: Callable[[], T]) -> T:
    """Run ``fn``; while Redis is away, wait for it (at most ``outage_s``) and run it again.

    Raises the last outage error when Redis does not come back in time.
    """
    deadline = time.monotonic() + outage_s
    while True:
        try:
            return fn()
        except OUTAGE_ERRORS as exc:
            log.warning("Redis away while %s (%s); waiting up to %.0fs", action, exc, outage_s)
            if not wait_for_redis(ping, deadline):
                raise
