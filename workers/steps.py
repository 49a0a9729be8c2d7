"""The two Redis round trips that frame every call: what to know before, what to write after."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from broker.message import Envelope
from broker.pending import stale_hop
from broker.scripts import execute_with_scripts, redis_errors
from router.lane_state import LaneStatus
from workers.context import WorkerContext
from workers.ratelimit import Reservation
from workers.results import parse_result


@dataclass(frozen=True)
class Before:
    stale: bool
    """A later message of the job already took over: drop this one."""
    recorded: dict[str, Any] | None
    """The job's result, when it is already recorded (a redelivery)."""
    status: LaneStatus


def before_call(ctx: WorkerContext, env: Envelope) -> Before:
    """Hand-off mark, recorded result and lane state, in one round trip."""
    with redis_errors(f"reading the state of job {env.job.id}"):
        pipe = ctx.redis.pipeline(transaction=False)
        ctx.pending.is_stale_in(pipe, env.job.id)
        ctx.results.get_in(pipe, env.job.id)
        parse = ctx.state.statuses_in(pipe, [env.instance])
        replies = pipe.execute()
    return Before(
        stale=stale_hop(replies[0], env.hop),
        recorded=parse_result(replies[1]),
        status=parse(replies[2:])[env.instance],
    )


def after_success(
    ctx: WorkerContext,
    env: Envelope,
    reservation: Reservation | None,
    record: dict[str, Any],
) -> dict[str, Any]:
    """Record the result (once), the charge (once per call key), settle the reservation to the
    real usage and count a success for the lane's health: one round trip. Returns the result
    that stands (an earlier one, if this job had already been recorded)."""

    def build(pipe: redis.client.Pipeline) -> None:
        ctx.results.record_in(pipe, env.job.id, record)
        ctx.charges.charge_in(pipe, env.job.id, env.step, env.attempt, record["cost_usd"])
        if reservation is not None:
            ctx.limiter.settle_in(
                pipe, reservation, record["input_tokens"], record["output_tokens"]
            )
        ctx.state.record_success_in(pipe, env.instance)

    with redis_errors(f"recording the result of job {env.job.id}"):
        created = execute_with_scripts(ctx.redis, build)[0]
    return record if created else ctx.results.get(env.job.id) or record
