"""What a worker writes down about each provider call besides the result: the ledger's
events, the budget's reservation and the response cache.

Each provider call is numbered (:meth:`lanes.stores.jobs.JobStore.next_call`) and handed
off as a :class:`~lanes.stores.ledger.CallEvent` *before* it starts: a call whose worker dies
mid-call was still billed by the provider, so it stays in the books at its reservation. Its
end is a :class:`~lanes.stores.ledger.CostEvent` (the real cost; 0 for an error the provider
does not bill). A job's end is one :class:`~lanes.stores.ledger.OutcomeEvent`. A success's
events go in the same Redis round trip as its result (:meth:`StepFrame.after_success`).

Nothing here touches the database: the events wait in Redis for the drainer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from lanes.broker.message import Envelope
from lanes.broker.result import Result
from lanes.dispatch.books import outcome_event, reservation_usd
from lanes.kernel.config import Config
from lanes.kernel.errors import BudgetExceeded, InfrastructureError, ProviderError, RateLimited
from lanes.stores import Stores
from lanes.stores.cache import CachedAnswer
from lanes.stores.ledger import (
    CallEvent,
    CostEvent,
    LedgerEvent,
    RateLimitEvent,
)

log = logging.getLogger("lanes.workers")


class CallBudget(Protocol):
    """The budget's side of a worker's calls (:class:`lanes.workers.budget.WorkerBudget`)."""

    def start_call(self, env: Envelope, call_key: str, est_usd: float) -> None: ...

    def settle(self, env: Envelope, call_key: str, actual_usd: float, *, final: bool) -> None: ...

    def release(self, job_id: str) -> None: ...


@dataclass(frozen=True)
class Call:
    """One numbered provider call of a job's step."""

    env: Envelope
    number: int

    @property
    def key(self) -> str:
        return f"{self.env.step}:{self.env.attempt}:{self.number}"

    def ids(self) -> dict[str, object]:
        env = self.env
        return {
            "job_id": env.job.id,
            "project": env.job.project,
            "user": env.job.user,
            "instance": env.instance,
            "model": env.model,
            "step": env.step,
            "attempt": env.attempt,
            "call": self.number,
            "task_type": env.task_type,
        }


@dataclass
class Books:
    config: Config
    stores: Stores
    budget: CallBudget | None = None

    @property
    def on(self) -> bool:
        return self.config.ledger.enabled

    def call_started(self, env: Envelope) -> Call | None:
        """Number the call about to start and hand off its :class:`CallEvent` (one round
        trip), and hold its budget reservation for it; None, with nothing handed off, when
        the job's caller cancelled it (no call may start)."""
        reserved = reservation_usd(self.config, env.instance, env.model, env.input_tokens,
                                   env.job.max_tokens)  # fmt: skip
        event = CallEvent(**Call(env, 1).ids(), reserved_usd=reserved) if self.on else None
        number = self.stores.frame.start_call(env.job.id, env.step, env.attempt, event)
        if number == 0:
            return None
        call = Call(env, number)
        if self.budget is not None:
            try:
                self.budget.start_call(env, call.key, max(env.reserved_usd, reserved))
            except BudgetExceeded:
                self._never_ran(call)
                raise
        return call

    def _never_ran(self, call: Call) -> None:
        """The call was numbered (and handed off at its reservation) but will not run."""
        if self.on:
            self.stores.ledger.emit([CostEvent(**call.ids(), cost_usd=0.0, ok=False)])

    def call_failed(self, call: Call, exc: ProviderError, cooldown_s: float | None) -> None:
        """A call ended in an error: the provider bills nothing for it."""
        if self.on:
            events: list[LedgerEvent] = [CostEvent(**call.ids(), cost_usd=0.0, ok=False)]
            if isinstance(exc, RateLimited):
                events.append(
                    RateLimitEvent(**call.ids(), cooldown_s=cooldown_s or 0.0, reason=str(exc))
                )
            self.stores.ledger.emit(events)
        if self.budget is not None:
            self.budget.settle(call.env, call.key, 0.0, final=False)

    def success_events(self, call: Call, result: Result) -> list[LedgerEvent]:
        """The events that go with a success's result, in its round trip."""
        if not self.on:
            return []
        cost = CostEvent(
            **call.ids(),
            cost_usd=result.cost_usd,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
        )
        return [cost, outcome_event(self.config, call.env, result)]

    def settled(self, call: Call, result: Result) -> None:
        """After a success is recorded: settle the budget and fill the response cache. Best
        effort: the result already stands, so a Redis error here is logged, not raised."""
        env = call.env
        try:
            if self.budget is not None:
                self.budget.settle(env, call.key, result.cost_usd, final=True)
            if env.cache_key is not None:
                self.stores.cache.put(env.cache_key, CachedAnswer.from_result(result),
                                      self.config.cache.ttl_s)  # fmt: skip
        except InfrastructureError as exc:
            log.warning("job %s: budget or cache not updated: %s", env.job.id, exc)

    def job_failed(self, env: Envelope, result: Result) -> None:
        """The job ended in failure: hand off its outcome and free its reservation."""
        if self.on:
            self.stores.ledger.emit([outcome_event(self.config, env, result)])
        if self.budget is not None:
            self.budget.release(env.job.id)
