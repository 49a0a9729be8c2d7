"""The ledger as a layer: every decision, call, cost and outcome handed to the ledger's queue
in Redis (the drainer moves them into the database, off every job's path).

A provider call is handed off at its reservation *before* it starts, with its number and in
the same round trip (a call whose worker dies mid-call was still billed, so it stays in the
books); its end is a :class:`~lanes.stores.ledger.CostEvent` (0 for an error the provider does
not bill), the job's end one :class:`~lanes.stores.ledger.OutcomeEvent`. A success's events go
in the round trip that records its result (:meth:`lanes.stores.frame.StepFrame.after_success`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from lanes.broker.message import Envelope
from lanes.broker.result import Result
from lanes.kernel.config import Config
from lanes.kernel.errors import InfrastructureError, ProviderError, RateLimited
from lanes.layers.hooks import Call, CallLayer, DispatchLayer
from lanes.layers.reservation import reservation_usd
from lanes.router.decision import Decision
from lanes.stores.ledger import (
    CallEvent,
    CostEvent,
    DecisionEvent,
    FallbackRow,
    LedgerEvent,
    LedgerSink,
    OutcomeEvent,
    RateLimitEvent,
)

log = logging.getLogger("lanes.dispatcher")


class LedgerAtDispatch(DispatchLayer):
    """The decision (and a cache hit's outcome), handed off once the job is on its way: a
    Redis error here is logged, never raised to the caller."""

    def __init__(self, config: Config, sink: LedgerSink) -> None:
        self._config = config
        self._sink = sink

    def after_send(self, envelope: Envelope, decision: Decision) -> None:
        self._emit(envelope, [decision_event(self._config, envelope, decision)])

    def after_answer(self, envelope: Envelope, decision: Decision, result: Result) -> None:
        self._emit(envelope, [decision_event(self._config, envelope, decision),
                              outcome_event(self._config, envelope, result)])  # fmt: skip

    def _emit(self, envelope: Envelope, events: list[LedgerEvent]) -> None:
        try:
            self._sink.emit(events)
        except InfrastructureError as exc:
            log.warning("job %s: decision not handed to the ledger: %s", envelope.job.id, exc)


class LedgerAroundCall(CallLayer):
    """Each call's start, cost and rate limit, and each job's end."""

    def __init__(self, config: Config, sink: LedgerSink) -> None:
        self._config = config
        self._sink = sink

    def numbered_event(self, env: Envelope) -> CallEvent | None:
        reserved = reservation_usd(self._config, env.instance, env.model, env.input_tokens,
                                   env.job.max_tokens, batch=env.batch)  # fmt: skip
        return CallEvent(**Call(env, 1).ids(), reserved_usd=reserved)

    def after_skip(self, call: Call) -> None:
        """Handed off at its reservation, the call never ran: it cost nothing."""
        self._sink.emit([CostEvent(**call.ids(), cost_usd=0.0, ok=False)])

    def after_failure(self, call: Call, exc: ProviderError, cooldown_s: float | None) -> None:
        """The provider bills nothing for an error, but for an answer refused after it came
        (:class:`~lanes.kernel.errors.BadAnswer`: its usage is on the error)."""
        env = call.env
        cost = self._config.price_usd(env.instance, env.model, exc.usage, batch=env.batch)
        events: list[LedgerEvent] = [
            CostEvent(
                **call.ids(),
                cost_usd=cost,
                ok=False,
                input_tokens=exc.usage.get("input_tokens", 0),
                output_tokens=exc.usage.get("output_tokens", 0),
            )
        ]
        if isinstance(exc, RateLimited):
            events.append(
                RateLimitEvent(**call.ids(), cooldown_s=cooldown_s or 0.0, reason=str(exc))
            )
        self._sink.emit(events)

    def success_events(self, call: Call, result: Result) -> Sequence[LedgerEvent]:
        cost = CostEvent(
            **call.ids(),
            cost_usd=result.cost_usd,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
        )
        return [cost, outcome_event(self._config, call.env, result)]

    def after_job_failed(self, env: Envelope, result: Result) -> None:
        self._sink.emit([outcome_event(self._config, env, result)])


def decision_event(config: Config, env: Envelope, decision: Decision) -> DecisionEvent:
    clf = decision.classification
    job = env.job
    return DecisionEvent(
        job_id=job.id,
        project=job.project,
        user=job.user,
        instance=env.instance,
        model=env.model,
        strategy=decision.strategy,
        task_type=env.task_type,
        complexity=clf.complexity.value if clf else "",
        vital=clf.vital if clf else False,
        difficulty=clf.difficulty if clf else 0.0,
        estimated_cost_usd=decision.estimated_cost_usd,
        reasons=list(decision.reasons),
        prompt=job.text() if config.ledger.store_text else None,
    )


def outcome_event(config: Config, env: Envelope, result: Result) -> OutcomeEvent:
    """How ``env``'s job ended, for the ledger: a worker's result or a cache hit's."""
    fallbacks = [
        FallbackRow(
            to_step=event.to_step,
            from_instance=event.from_instance,
            from_model=event.from_model,
            to_instance=env.chain[event.to_step].instance if event.to_step < len(env.chain) else "",
            reason=event.reason,
        )
        for event in result.fallbacks
    ]
    when = {"at": result.finished_at} if result.finished_at else {}
    return OutcomeEvent(
        **when,
        job_id=result.job_id,
        project=result.project,
        user=result.user,
        status=result.status,
        instance=result.instance,
        model=result.model,
        step=result.step,
        attempt=result.attempt,
        task_type=env.task_type,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        cost_usd=result.cost_usd,
        latency_s=result.latency_s,
        waited_s=result.waited_s,
        fallbacks=fallbacks,
        cached=result.cached,
        cost_saved_usd=result.cost_saved_usd,
        batched=result.batched,
        batch_saved_usd=result.batch_saved_usd,
        prompt_cache_saved_usd=result.prompt_cache_saved_usd,
        error=result.error,
        output=result.text if config.ledger.store_text and result.text else None,
    )
