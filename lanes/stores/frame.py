"""What a worker reads before a provider call and writes after it, as one unit each.

Redis does each in one round trip (:class:`lanes.stores.redis.frame.RedisFrame`);
:class:`SequentialFrame` does the same through the ports, one call at a time, for the
in-memory stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from lanes.broker.result import Result
from lanes.router.lane_state import LaneStatus
from lanes.stores.jobs import JobStore
from lanes.stores.lane_state import LaneStateStore
from lanes.stores.ledger import CallEvent, LedgerEvent, LedgerSink
from lanes.stores.limiter import RateLimiter, Reservation


@dataclass(frozen=True)
class Before:
    stale: bool
    """A later message of the job already took over: drop this one."""
    recorded: Result | None
    """The job's result, when it is already recorded (a redelivery)."""
    status: LaneStatus
    """The live state of the message's instance."""


class StepFrame(Protocol):
    def before(self, job_id: str, hop: int, instance: str) -> Before:
        """Hand-off mark, recorded result and lane state of one message."""
        ...

    def start_call(self, job_id: str, step: int, attempt: int, event: CallEvent | None) -> int:
        """Number the provider call about to start (:meth:`JobStore.next_call`) and hand
        ``event`` off to the ledger with that number, as one unit; the number (0, with nothing
        handed off, when the job was cancelled)."""
        ...

    def after_success(
        self,
        result: Result,
        reservation: Reservation | None,
        events: Sequence[LedgerEvent] = (),
    ) -> Result:
        """Record ``result`` (once per job), charge its call (once per job, step, attempt),
        settle ``reservation`` to the real usage, count a success for the lane's health and
        hand ``events`` off to the ledger with them. Returns the result that stands (an
        earlier one, if the job was already recorded). Safe to repeat: a repeat changes
        nothing (the ledger applies a repeated event once)."""
        ...


@dataclass(frozen=True)
class SequentialFrame:
    jobs: JobStore
    lane_state: LaneStateStore
    limiter: RateLimiter
    ledger: LedgerSink

    def before(self, job_id: str, hop: int, instance: str) -> Before:
        return Before(
            stale=self.jobs.is_stale(job_id, hop),
            recorded=self.jobs.result(job_id),
            status=self.lane_state.status(instance),
        )

    def start_call(self, job_id: str, step: int, attempt: int, event: CallEvent | None) -> int:
        number = self.jobs.next_call(job_id, step, attempt)
        if event is not None and number:
            self.ledger.emit([event.model_copy(update={"call": number})])
        return number

    def after_success(
        self,
        result: Result,
        reservation: Reservation | None,
        events: Sequence[LedgerEvent] = (),
    ) -> Result:
        standing = self.jobs.record(result)
        self.jobs.charge(result.job_id, result.step, result.attempt, result.cost_usd)
        if reservation is not None:
            self.limiter.settle(reservation, result.metered_input_tokens, result.output_tokens)
        if not result.batched:  # a batch's answer says nothing of the lane's calls
            self.lane_state.record_success(
                result.instance, result.latency_s, result.output_tokens, result.model
            )
        self.ledger.emit(events)
        return standing
