"""Background work of a worker process: the sweep for lost messages (:mod:`broker.janitor`)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery

from broker.app import RUN_TASK
from broker.janitor import Janitor
from broker.message import Envelope
from kernel.errors import InfrastructureError
from workers.context import WorkerContext

log = logging.getLogger("lanes.janitor")


def build_janitor(ctx: WorkerContext, app: Celery) -> Janitor:
    def publish(job_id: str, queue: str, envelope: dict[str, Any]) -> None:
        label = Envelope.model_validate(envelope).label()
        app.send_task(RUN_TASK, args=[envelope], task_id=job_id, queue=queue,
                      argsrepr=label, kwargsrepr="{}")  # fmt: skip

    return Janitor(
        ctx.redis,
        ctx.keys,
        ctx.pending,
        ctx.config.lanes(),
        publish,
        quiet_s=ctx.config.janitor_quiet_s,
    )


def start_janitor(ctx: WorkerContext, app: Celery, stop: threading.Event) -> threading.Thread:
    """Sweep every ``janitor_interval_s`` until ``stop`` is set (a daemon thread)."""
    janitor = build_janitor(ctx, app)
    interval_s = ctx.config.janitor_interval_s

    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                rescued = janitor.sweep()
            except InfrastructureError as exc:  # Redis away: try again next round
                log.warning("janitor sweep skipped: %s", exc)
                continue
            if rescued:
                log.warning("janitor re-sent %d lost message(s)", len(rescued))

    thread = threading.Thread(target=loop, name="lanes-janitor", daemon=True)
    thread.start()
    return thread
