"""Relaying a streaming job's call to its stream (:mod:`lanes.stores.streams`).

Each call of a job that asked for ``stream`` opens with ``start`` (its first call) or
``restart`` (any later one: a retry, a fallback), then writes each piece of text as the
provider sends it, one Redis round trip each; ``end`` follows the recorded result. Redis away
mid-answer stops the relay, never the call: the answer is recorded as usual and the reader,
which also watches the result, ends with it.
"""

from __future__ import annotations

import logging

from lanes.broker.message import Envelope
from lanes.broker.result import Result
from lanes.broker.stream import StreamEvent
from lanes.kernel.errors import InfrastructureError
from lanes.workers.context import WorkerContext
from lanes.workers.providers.base import TextSink

log = logging.getLogger("lanes.worker")


def relay(ctx: WorkerContext, env: Envelope) -> TextSink:
    """Open the call on the job's stream; the sink its text goes to."""
    first = env.step == 0 and env.attempt == 0
    opening = StreamEvent(
        kind="start" if first else "restart",
        instance=env.instance,
        model=env.model,
        reason="" if first else _why(env),
    )
    working = [_append(ctx, env, opening)]

    def on_text(piece: str) -> None:
        if working[0]:
            working[0] = _append(ctx, env, StreamEvent(kind="text", text=piece))

    return on_text


def ended(ctx: WorkerContext, env: Envelope, result: Result) -> None:
    event = StreamEvent(kind="end", instance=result.instance, model=result.model,
                        status=result.status)  # fmt: skip
    _append(ctx, env, event)


def _why(env: Envelope) -> str:
    if env.fallbacks and env.fallbacks[-1].to_step == env.step and env.attempt == 0:
        last = env.fallbacks[-1]
        return f"fell back from {last.from_instance}/{last.from_model}: {last.reason}"
    return f"try {env.attempt + 1} on {env.instance}/{env.model} after a failed call"


def _append(ctx: WorkerContext, env: Envelope, event: StreamEvent) -> bool:
    try:
        ctx.stores.streams.append(env.job.id, [event], ctx.config.result_ttl_s)
    except InfrastructureError as exc:
        log.warning("job %s: its stream is not relayed further: %s", env.job.id, exc)
        return False
    return True
