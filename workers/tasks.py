"""Celery tasks: thin adapters over :func:`workers.runner.run_step`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from celery.exceptions import Ignore

from broker.app import NOOP_TASK, RUN_TASK
from lanes.errors import InfrastructureError
from workers.context import WorkerContext
from workers.envelope import Envelope
from workers.outcome import Done, Drop, Forward, Retry
from workers.runner import run_step

log = logging.getLogger("lanes.workers")


def register_tasks(app: Celery, context: Callable[[], WorkerContext]) -> None:
    """Register ``lanes.run`` and ``lanes.noop`` on ``app``.

    ``context`` returns the process's :class:`WorkerContext`; it is called on first use so
    that connections are made in the process that uses them.
    """

    @app.task(name=RUN_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
    def run(self: Task, envelope: dict[str, Any]) -> dict[str, Any]:
        env = Envelope.model_validate(envelope)
        ctx = context()
        outcome = run_step(ctx, env)
        if isinstance(outcome, Done):
            return outcome.result
        if isinstance(outcome, Drop):
            log.warning("dropped stale message %s hop=%d", env.label(), env.hop)
            raise Ignore()
        if isinstance(outcome, Retry):
            nxt = outcome.envelope
            retry = self.retry(
                args=[nxt.to_wire()],
                countdown=outcome.countdown_s,
                max_retries=None,
                argsrepr=nxt.label(),
                kwargsrepr="{}",
                throw=False,
            )
            _handed_on(ctx, env, nxt)
            raise retry
        assert isinstance(outcome, Forward)
        nxt = outcome.envelope
        sig = app.signature(
            RUN_TASK,
            args=[nxt.to_wire()],
            queue=nxt.instance,
            argsrepr=nxt.label(),
            kwargsrepr="{}",
        )
        try:
            raise self.replace(sig)
        except Ignore:  # replace() publishes the next message, then raises Ignore
            _handed_on(ctx, env, nxt)
            raise

    @app.task(name=NOOP_TASK, acks_late=True)
    def noop(value: int = 0) -> int:
        return value


def _handed_on(ctx: WorkerContext, env: Envelope, nxt: Envelope) -> None:
    """Mark ``env`` as handed on, after its successor is published and before it is acked.

    Without the mark a lost acknowledgement lets the old message run again later; that is
    the at-least-once behaviour the rest of the worker already tolerates, so a Redis error
    here is logged, not raised (raising would fail a job whose next message is on its way).
    """
    try:
        ctx.pending.hand_on(env.job.id, env.hop, nxt.instance, nxt.to_wire())
    except InfrastructureError as exc:
        log.warning("job %s: hand-off of hop %d not recorded: %s", env.job.id, env.hop, exc)
