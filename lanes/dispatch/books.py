"""What the dispatcher writes down and checks besides routing: the budget, the response cache
and the ledger's decision events.

:class:`DispatchBooks` is given the budget gate (None: no budgets) and the stores; every
method is cheap when its feature is off (no Redis round trip).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from lanes.broker import counters as metrics
from lanes.broker.message import Envelope
from lanes.broker.result import Result
from lanes.dispatch.budget_gate import BudgetGate
from lanes.kernel.config import BudgetAction, Config
from lanes.kernel.errors import InfrastructureError
from lanes.kernel.taxonomy import StrategyName
from lanes.router.cache_key import store_key
from lanes.router.candidates import CHEAP_TAG
from lanes.router.decision import Decision
from lanes.router.job import Job
from lanes.stores import Stores
from lanes.stores.cache import CachedAnswer
from lanes.stores.ledger import DecisionEvent, FallbackRow, LedgerEvent, OutcomeEvent

log = logging.getLogger("lanes.dispatcher")

RESERVE_INPUT_FACTOR = 1.5
RESERVE_INPUT_OVERHEAD = 32
"""A reservation counts the estimated input tokens x 1.5 + 32: the estimate is ~4 characters a
token, providers differ by +-20% on prose and more on code, and each request carries some
framing tokens of its own. Output is bounded by ``max_tokens`` exactly."""


@dataclass(frozen=True)
class Pressure:
    """How budget alerts bend the routing of one job right now."""

    strategy: str | None = None
    blocked_models: frozenset[str] = frozenset()


@dataclass
class DispatchBooks:
    config: Config
    stores: Stores
    budget: BudgetGate | None = None

    # -- before routing -------------------------------------------------------------------------
    def pressure(self, job: Job) -> Pressure:
        """``switch_to_cheaper``: route with ``cost_optimized`` (unless the job names its own
        strategy); ``block_expensive_models``: refuse models at or above
        ``budgets.expensive_output_per_mtok``."""
        if self.budget is None:
            return Pressure()
        try:
            actions = self.budget.pressure(job)
        except InfrastructureError as exc:  # routing goes on; the submit meets Redis again
            log.warning("job %s: budget pressure unknown: %s", job.id, exc)
            return Pressure()
        strategy = None
        if BudgetAction.SWITCH_TO_CHEAPER in actions and job.strategy is None:
            strategy = StrategyName.COST_OPTIMIZED.value
        blocked: frozenset[str] = frozenset()
        if BudgetAction.BLOCK_EXPENSIVE_MODELS in actions:
            bar = self.config.budgets.expensive_output_per_mtok
            blocked = frozenset(
                name for name, spec in self.config.models.items()
                if spec.price.output_per_mtok >= bar
            )  # fmt: skip
        return Pressure(strategy, blocked)

    # -- sizing a job ---------------------------------------------------------------------------
    def cache_key(self, job: Job) -> str | None:
        """Where the job's answer goes in the cache (also for a job that opted out of being
        answered from it); None when the cache is off."""
        return store_key(job, spec=self.config.cache)

    # -- the response cache ---------------------------------------------------------------------
    def cached(self, job: Job, key: str | None, vital: bool) -> CachedAnswer | None:
        """A cached answer ``job`` may be given, unless it opted out; a Redis error is a miss.

        The key leaves the model out, so an answer is only given where the job could have
        gone itself: not a cheap lane's answer to vital work, not below its ``min_quality``,
        and only from the lane and model it pins, if it pins them."""
        if key is None or not job.cache:
            return None
        try:
            answer = self.stores.cache.get(key)
        except InfrastructureError as exc:
            log.warning("job %s: response cache unreadable, calling the provider: %s",
                        job.id, exc)  # fmt: skip
            return None
        return answer if answer is not None and self._fits(job, answer, vital) else None

    def _fits(self, job: Job, answer: CachedAnswer, vital: bool) -> bool:
        instance = self.config.instances.get(answer.instance)
        model = self.config.models.get(answer.model)
        if instance is None or model is None:
            return False  # written under another config
        if vital and CHEAP_TAG in instance.tags:
            return False
        if job.constraints.min_quality is not None and model.quality < job.constraints.min_quality:
            return False
        if job.model is not None and job.model != answer.model:
            return False
        return job.instance is None or answer.instance in self.config.members(job.instance)

    def cache_result(self, env: Envelope, answer: CachedAnswer) -> Result:
        job = env.job
        return Result(
            job_id=job.id,
            status="ok",
            instance=answer.instance,
            model=answer.model,
            step=0,
            attempt=0,
            text=answer.text,
            stop_reason=answer.stop_reason,
            usage=dict(answer.usage),
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            project=job.project,
            user=job.user,
            worker="cache",
            finished_at=time.time(),
            cached=True,
            cost_saved_usd=answer.cost_usd,
            simulated=answer.simulated,
        )

    # -- the ledger -----------------------------------------------------------------------------
    def decided(self, env: Envelope, decision: Decision, cached: Result | None = None) -> None:
        """Hand off the decision (and a cache hit's outcome); best effort after the job is
        on its way: a Redis error here is logged, never raised to the caller."""
        metrics.decided(decision.strategy, env.instance)
        if not self.config.ledger.enabled:
            return
        events: list[LedgerEvent] = [decision_event(self.config, env, decision)]
        if cached is not None:
            events.append(outcome_event(self.config, env, cached))
        try:
            self.stores.ledger.emit(events)
        except InfrastructureError as exc:
            log.warning("job %s: decision not handed to the ledger: %s", env.job.id, exc)


def reservation_usd(
    config: Config, instance: str, model: str, input_tokens: int, max_tokens: int
) -> float:
    """The most one call of ``model`` on ``instance`` may cost: the estimated input with a
    margin (:data:`RESERVE_INPUT_FACTOR`) and all of ``max_tokens``. What a call counts as
    spent until it settles, and what budgets reserve for a job (on its first step: a job that
    falls back to a dearer step may spend more than it reserved, by at most that step's
    difference)."""
    reserved_in = int(input_tokens * RESERVE_INPUT_FACTOR) + RESERVE_INPUT_OVERHEAD
    usage = {"input_tokens": reserved_in, "output_tokens": max_tokens}
    return config.price_usd(instance, model, usage)


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
        error=result.error,
        output=result.text if config.ledger.store_text and result.text else None,
    )
