"""The Celery task: a thin adapter over :func:`lanes.workers.runner.run_step`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from celery.exceptions import Ignore, Reject

from lanes.broker import counters as metrics
from lanes.broker.amqp import DELIVERY_COUNT
from lanes.broker.chain_links import feed
from lanes.broker.message import REDELIVERED, RUN_TASK, Envelope, hand_over
from lanes.broker.result import Result
from lanes.kernel.errors import InfrastructureError
from lanes.workers.context import WorkerContext
from lanes.workers.inspection import show_labels
from lanes.workers.outage import is_outage, wait_for_redis
from lanes.workers.outcome import Done, Drop, Outcome, Parked, Retry
from lanes.workers.runner import broken_promise, fail_step, run_step
from lanes.workers.services.liveness import CANARY_TASK

log = logging.getLogger("lanes.workers")


def register_tasks(
    app: Celery,
    context: Callable[[], WorkerContext],
    *,
    on_canary: Callable[[str], None] | None = None,
) -> None:
    """Register ``lanes.run`` (and ``lanes.canary``, given ``on_canary``) on ``app``, and make
    this process's answers to ``celery inspect`` show jobs by their labels
    (:mod:`lanes.workers.inspection`).

    ``context`` returns the process's :class:`WorkerContext`; it is called on first use so
    that connections are made in the process that uses them. ``on_canary(lane)`` marks a
    liveness canary of ``lane`` taken (:mod:`lanes.workers.services.liveness`).
    """
    show_labels()
    if on_canary is not None:
        marker = on_canary

        # send_events=False: no task event, so monitoring (Flower) does not list canaries.
        @app.task(name=CANARY_TASK, shared=False, ignore_result=True, send_events=False)
        def canary(lane: str) -> None:
            try:
                marker(lane)
            except InfrastructureError as exc:
                log.warning("canary of lane %s not marked: %s", lane, exc)

    # ignore_result: the job store records the one result where Celery's backend reads it
    # (lanes.stores.redis.jobs), so Celery stores neither a STARTED state nor a second copy.
    # An unexpected exception is still stored, so that a caller never waits for nothing.
    # shared=False: the task belongs to this app only, not to every app the process creates.
    @app.task(
        name=RUN_TASK,
        shared=False,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        store_errors_even_if_ignored=True,
    )
    def run(self: Task, *args: Any) -> dict[str, Any]:
        ctx = context()
        env, previous = _arguments(args)
        redelivered = _redelivered(self)
        deadline = time.monotonic() + ctx.config.retry.outage_s
        while True:
            try:
                return _step(self, ctx, env, previous, redelivered)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                _outlast(ctx, env, exc, deadline)
                redelivered = True  # part of the step may have happened: check before calling


def _arguments(args: tuple[Any, ...]) -> tuple[Envelope, tuple[Any, ...]]:
    """The envelope, and what came before it: the previous job's summary when this message
    is a chain link after another job (Celery passes the previous return value first)."""
    if len(args) not in (1, 2):
        raise TypeError(f"{RUN_TASK} takes an envelope (after a previous result), got {len(args)}")
    return Envelope.model_validate(args[-1]), args[:-1]


def _step(
    task: Task, ctx: WorkerContext, env: Envelope, previous: tuple[Any, ...], redelivered: bool
) -> dict[str, Any]:
    """One go at the step: a message that breaks the dispatcher's rules fails its job (checked
    on the job as it was submitted); a chain link takes the previous job's answer from the job
    store (never from a return value, which holds no reply), and the layers derive what they
    keep of the job again; then the step runs."""
    refused = broken_promise(ctx, env) or _delivered_too_often(task, ctx)
    if refused is not None:
        return _summary(fail_step(ctx, env, refused).result)
    if previous:
        fed = feed(env, previous[0], ctx.stores.jobs.result, ctx.config.max_job_bytes)
        if isinstance(fed, str):
            return _summary(fail_step(ctx, env, fed).result)
        env = ctx.layers.after_feed(fed)
    return _carry_out(task, ctx, env, run_step(ctx, env, redelivered=redelivered))


def _redelivered(task: Task) -> bool:
    """Whether this message may have run before: the broker says so (AMQP's flag, the header
    kombu's Redis transport sets on a restored message), or the janitor re-sent it."""
    request = task.request
    delivery_info = request.delivery_info or {}
    headers = request.headers or {}
    return bool(
        delivery_info.get(REDELIVERED)
        or headers.get(REDELIVERED)
        or getattr(request, REDELIVERED, False)
    )


def _delivered_too_often(task: Task, ctx: WorkerContext) -> str | None:
    """Why not to run a message RabbitMQ has delivered ``broker.delivery_limit`` times (each
    worker that took it was lost); None otherwise or on Redis."""
    request = task.request
    count = getattr(request, DELIVERY_COUNT, None) or (request.headers or {}).get(DELIVERY_COUNT)
    limit = ctx.config.broker.delivery_limit
    if isinstance(count, int) and count >= limit:
        return (
            f"its message was redelivered {count} times and every worker that took it was lost;"
            f" not run again (broker.delivery_limit {limit})"
        )
    return None


def _outlast(ctx: WorkerContext, env: Envelope, exc: Exception, deadline: float) -> None:
    """Wait for Redis after an outage hit a step (see :mod:`lanes.workers.outage`); the caller then
    runs the step again. If Redis stays away, leave the message to be redelivered."""
    log.warning("%s: Redis away (%s); waiting for it", env.label(), exc)
    if not wait_for_redis(ctx.ping, deadline):
        log.error("%s: Redis still away; message left for redelivery", env.label())
        raise Reject(exc, requeue=True) from exc
    log.warning("%s: Redis is back; running the step again", env.label())


def _carry_out(task: Task, ctx: WorkerContext, env: Envelope, outcome: Outcome) -> dict[str, Any]:
    """Turn ``outcome`` into what Celery expects: a return value, or the next message."""
    if isinstance(outcome, Done):
        return _summary(outcome.result)
    if isinstance(outcome, Drop):
        log.warning("dropped stale message %s hop=%d", env.label(), env.hop)
        raise Ignore()
    if isinstance(outcome, Parked):
        parked = outcome.envelope
        return {"job_id": parked.job.id, "status": "batched", "instance": parked.instance,
                "model": parked.model}  # fmt: skip
    nxt = outcome.envelope
    countdown_s = outcome.countdown_s if isinstance(outcome, Retry) else None
    try:
        hand_over(task, nxt, countdown_s=countdown_s)
    except Ignore:  # the next message is published; the task ends here
        _handed_on(ctx, env, nxt)
        raise


def _summary(result: Result) -> dict[str, Any]:
    """What ``lanes.run`` returns: who ran the job and how it ended, never its reply. Callers
    and a canvas's next task read the result itself from the job store; the return value ends
    up in Celery's log line and in monitoring events (Flower)."""
    return {"job_id": result.job_id, "status": result.status, "instance": result.instance,
            "model": result.model}  # fmt: skip


def _handed_on(ctx: WorkerContext, env: Envelope, nxt: Envelope) -> None:
    """Mark ``env`` as handed on, after its successor is published and before it is acked.

    Without the mark a lost acknowledgement lets the old message run again later; that is
    the at-least-once behaviour the rest of the worker already tolerates, so a Redis error
    here is logged, not raised (raising would fail a job whose next message is on its way).
    """
    if nxt.step > env.step:
        metrics.fell_back(env.instance, env.model)
    try:
        ctx.stores.jobs.hand_on(env.job.id, env.hop, nxt.instance, nxt.to_wire())
    except InfrastructureError as exc:
        log.warning("job %s: hand-off of hop %d not recorded: %s", env.job.id, env.hop, exc)
