"""The two Redis round trips that frame every provider call (:class:`StepFrame` on Redis)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from lanes.broker.result import Result
from lanes.router.lane_state import LaneStatus
from lanes.stores.frame import Before
from lanes.stores.ledger import CallEvent, LedgerEvent
from lanes.stores.limiter import Reservation
from lanes.stores.redis.jobs import RedisJobStore, parse_result, stale_hop
from lanes.stores.redis.lane_state import RedisLaneState
from lanes.stores.redis.ledger import RedisLedgerSink
from lanes.stores.redis.limiter import RedisLimiter
from lanes.stores.scripts import execute_with_scripts, redis_errors


@dataclass(frozen=True)
class RedisFrame:
    client: redis.Redis
    jobs: RedisJobStore
    lane_state: RedisLaneState
    limiter: RedisLimiter
    ledger: RedisLedgerSink

    def before(self, job_id: str, hop: int, instance: str) -> Before:
        parsers: list[Callable[[list[Any]], dict[str, LaneStatus]]] = []

        def build(pipe: redis.client.Pipeline) -> None:
            self.jobs.stale_in(pipe, job_id)
            self.jobs.result_in(pipe, job_id)
            parsers.append(self.lane_state.statuses_in(pipe, [instance]))

        with redis_errors(f"reading the state of job {job_id}"):
            replies = execute_with_scripts(self.client, build)
        return Before(
            stale=stale_hop(replies[0], hop),
            recorded=parse_result(replies[1]),
            status=parsers[-1](replies[2:])[instance],
        )

    def start_call(self, job_id: str, step: int, attempt: int, event: CallEvent | None) -> int:
        wire = event.model_dump_json(exclude={"call"}) if event is not None else ""
        with redis_errors(f"numbering a call of job {job_id}"):
            return self.jobs.start_call(job_id, f"{step}:{attempt}", self.ledger.key, wire)

    def after_success(
        self,
        result: Result,
        reservation: Reservation | None,
        events: Sequence[LedgerEvent] = (),
    ) -> Result:
        def build(pipe: redis.client.Pipeline) -> None:
            self.jobs.record_in(pipe, result)
            self.jobs.charge_in(pipe, result.job_id, result.step, result.attempt, result.cost_usd)
            if reservation is not None:
                self.limiter.settle_in(
                    pipe, reservation, result.metered_input_tokens, result.output_tokens
                )
            if not result.batched:  # a batch's answer says nothing of the lane's calls
                self.lane_state.record_success_in(
                    pipe, result.instance, result.latency_s, result.output_tokens, result.model
                )
            self.ledger.emit_in(pipe, events)

        with redis_errors(f"recording the result of job {result.job_id}"):
            created = execute_with_scripts(self.client, build)[0]
        if created:
            self.jobs.announce([result])
        return result if created else self.jobs.result(result.job_id) or result
