"""Parking a job for its lane's batch API, and handing a parked job back to the queue."""

from __future__ import annotations

import time

from celery import Celery

from lanes.broker.message import Envelope, publish
from lanes.stores.batches import Parked
from lanes.workers.context import WorkerContext

REQUEST_OVERHEAD_BYTES = 512
"""What a batched request adds to its text: JSON framing, model, ids."""


def park(ctx: WorkerContext, env: Envelope, call: int) -> None:
    """Leave ``env``'s job waiting to be batched, charged under call number ``call``."""
    size = env.job.payload_bytes() + REQUEST_OVERHEAD_BYTES
    parked = Parked(env.to_wire(), call)
    ctx.stores.batches.park(env.instance, env.model, env.job.id, parked, size, time.time())


def resend(ctx: WorkerContext, app: Celery, env: Envelope, nxt: Envelope) -> None:
    """Send ``nxt`` (the job's next message: the same step as a call) in place of parked
    ``env``; the hand-off is recorded as a worker records its own."""
    publish(app, nxt)
    ctx.stores.jobs.hand_on(env.job.id, env.hop, nxt.instance, nxt.to_wire())


def unpark(ctx: WorkerContext, app: Celery, env: Envelope, nxt: Envelope) -> None:
    """:func:`resend`, and forget the parked job."""
    resend(ctx, app, env, nxt)
    ctx.stores.batches.forget([env.job.id])
