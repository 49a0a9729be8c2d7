"""The Celery task: a thin adapter over :func:`workers.runner.run_step`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from celery.exceptions import Ignore, Reject

from broker import metrics
from broker.liveness import CANARY_TASK
from broker.message import REDELIVERED, RUN_TASK, Envelope, hand_over
from broker.pipeline import feed
from broker.result import Result
from kernel.errors import InfrastructureError
from workers.context import WorkerContext
from workers.outage import is_outage, wait_for_redis
from workers.outcome import Done, Drop, Outcome, Retry
from workers.runner import fail_step, run_step

log = logging.getLogger("lanes.workers")


def register_tasks(
    app: Celery,
    context: Callable[[], WorkerContext],
    *,
    on_canary: Callable[[str], None] | None = None,
) -> None:
    """Register ``lanes.run`` (and ``lanes.canary``, given ``on_canary``) on ``app``.

    ``context`` returns the process's :class:`WorkerContext`; it is called on first use so
    that connections are made in the process that uses them. ``on_canary(lane)`` marks a
    liveness canary of ``lane`` taken (:mod:`broker.liveness`).
    """
    if on_canary is not None:
        marker = on_canary

        @app.task(name=CANARY_TASK, shared=False, ignore_result=True)
        def canary(lane: str) -> None:
            try:
                marker(lane)
            except InfrastructureError as exc:
                log.warning("canary of lane %s not marked: %s", lane, exc)

    # ignore_result: the job store records the one result where Celery's backend reads it
    # (broker.stores.redis.jobs), so Celery stores neither a STARTED state nor a second copy.
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
        env, unfed = _arguments(ctx, args)
        if unfed is not None:
            return _return_value(self, fail_step(ctx, env, unfed).result)
        redelivered = _redelivered(self)
        deadline = time.monotonic() + ctx.config.retry.outage_s
        while True:
            try:
                return _carry_out(self, ctx, env, run_step(ctx, env, redelivered=redelivered))
            except Exception as exc:
                if not is_outage(exc):
                    raise
                _outlast(ctx, env, exc, deadline)
                redelivered = True  # part of the step may have happened: check before calling


def _arguments(ctx: WorkerContext, args: tuple[Any, ...]) -> tuple[Envelope, str | None]:
    """The envelope, fed the previous step's answer when this message is a chain link after
    another job (Celery passes the previous result first); and why it cannot run, if so."""
    if len(args) not in (1, 2):
        raise TypeError(f"{RUN_TASK} takes an envelope (after a previous result), got {len(args)}")
    env = Envelope.model_validate(args[-1])
    if len(args) == 1:
        return env, None
    fed = feed(env, args[0], ctx.config.cache, ctx.config.max_job_bytes)
    return (env, fed) if isinstance(fed, str) else (fed, None)


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


def _outlast(ctx: WorkerContext, env: Envelope, exc: Exception, deadline: float) -> None:
    """Wait for Redis after an outage hit a step (see :mod:`workers.outage`); the caller then
    runs the step again. If Redis stays away, leave the message to be redelivered."""
    log.warning("%s: Redis away (%s); waiting for it", env.label(), exc)
    if not wait_for_redis(ctx.ping, deadline):
        log.error("%s: Redis still away; message left for redelivery", env.label())
        raise Reject(exc, requeue=True) from exc
    log.warning("%s: Redis is back; running the step again", env.label())


def _carry_out(task: Task, ctx: WorkerContext, env: Envelope, outcome: Outcome) -> dict[str, Any]:
    """Turn ``outcome`` into what Celery expects: a return value, or the next message."""
    if isinstance(outcome, Done):
        return _return_value(task, outcome.result)
    if isinstance(outcome, Drop):
        log.warning("dropped stale message %s hop=%d", env.label(), env.hop)
        raise Ignore()
    nxt = outcome.envelope
    countdown_s = outcome.countdown_s if isinstance(outcome, Retry) else None
    try:
        hand_over(task, nxt, countdown_s=countdown_s)
    except Ignore:  # the next message is published; the task ends here
        _handed_on(ctx, env, nxt)
        raise


def _return_value(task: Task, result: Result) -> dict[str, Any]:
    """What the task returns. Callers read the stored result, so only a canvas link (a chain's
    next task, a chord's body, a callback) needs the whole of it; everybody else gets a summary,
    which keeps the reply out of Celery's log lines and monitoring events (Flower), and spares
    the worker from rendering it for them."""
    request = task.request
    if request.chain or request.callbacks or request.chord:
        return result.to_wire()
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
