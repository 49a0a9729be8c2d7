"""Celery tasks: thin adapters over :func:`workers.runner.run_step`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery, Task

from broker.app import NOOP_TASK, RUN_TASK
from workers.context import WorkerContext
from workers.envelope import Envelope
from workers.outcome import Done, Forward, Retry
from workers.runner import run_step


def register_tasks(app: Celery, context: Callable[[], WorkerContext]) -> None:
    """Register ``lanes.run`` and ``lanes.noop`` on ``app``.

    ``context`` returns the process's :class:`WorkerContext`; it is called on first use so
    that connections are made in the process that uses them.
    """

    @app.task(name=RUN_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
    def run(self: Task, envelope: dict[str, Any]) -> dict[str, Any]:
        env = Envelope.model_validate(envelope)
        outcome = run_step(context(), env)
        if isinstance(outcome, Done):
            return outcome.result
        if isinstance(outcome, Retry):
            nxt = outcome.envelope
            raise self.retry(
                args=[nxt.to_wire()],
                countdown=outcome.countdown_s,
                max_retries=None,
                argsrepr=nxt.label(),
                kwargsrepr="{}",
            )
        assert isinstance(outcome, Forward)
        nxt = outcome.envelope
        sig = app.signature(
            RUN_TASK,
            args=[nxt.to_wire()],
            queue=nxt.instance,
            argsrepr=nxt.label(),
            kwargsrepr="{}",
        )
        raise self.replace(sig)

    @app.task(name=NOOP_TASK, acks_late=True)
    def noop(value: int = 0) -> int:
        return value
