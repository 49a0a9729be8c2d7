"""The dispatcher: validate a job, route it, expand its pool, enqueue it on its lane.

::

    dispatcher = Dispatcher(config, app, router, stores)
    handle = dispatcher.submit({"prompt": "Summarise ...", "max_tokens": 300})
    result = handle.get(timeout_s=60)        # or: await handle.wait(timeout_s=60)

Nothing is enqueued unless the job is valid, routable and within its budgets; errors are
:class:`kernel.errors.JobError` (bad job), :class:`kernel.errors.NoRoute` or
:class:`kernel.errors.BudgetExceeded`. A job whose identical request was answered within the
cache TTL gets that answer at once, without a provider call (:mod:`broker.books`).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import redis
from celery import Celery
from celery.canvas import Signature
from kombu.exceptions import OperationalError

from broker.books import DispatchBooks, reservation_usd
from broker.budget_gate import BudgetGate
from broker.handle import JobHandle
from broker.message import Envelope, publish, signature
from broker.pools import PoolBalancer
from broker.result import Result
from broker.stores import Stores
from broker.stores.jobs import Claim
from kernel.config import Config
from kernel.errors import BudgetExceeded, InfrastructureError, JobError
from router.decision import Decision
from router.job import Job, parse_job
from router.lane_state import LaneStateReader

log = logging.getLogger("lanes.dispatcher")


class RouterLike(Protocol):
    def decide(
        self,
        job: Job,
        *,
        strategy: str | None = None,
        blocked_models: frozenset[str] = frozenset(),
    ) -> Decision: ...


class Dispatcher:
    def __init__(
        self,
        config: Config,
        app: Celery,
        router: RouterLike,
        stores: Stores,
        *,
        lane_state: LaneStateReader | None = None,
        budget: BudgetGate | None = None,
    ) -> None:
        """``lane_state``: what pool expansion reads (default: the stores' live lane state; a
        caller may pass a cached view of it). ``budget``: the budgets to hold jobs to."""
        self.config = config
        self.app = app
        self._router = router
        self._jobs = stores.jobs
        self._books = DispatchBooks(config, stores, budget)
        self._pools = PoolBalancer(config, stores.counter, lane_state or stores.lane_state)

    def prepare(
        self, job: Job | dict[str, Any], *, strategy: str | None = None
    ) -> tuple[Envelope, Decision]:
        """Validate and route ``job`` and expand its lane; enqueue nothing."""
        parsed = parse_job(job)
        size = parsed.payload_bytes()
        if size > self.config.max_job_bytes:
            raise JobError(
                f"job {parsed.id} carries {size} bytes of prompt, system, messages and metadata;"
                f" the limit is {self.config.max_job_bytes} (max_job_bytes in the config)"
            )
        pressure = self._books.pressure(parsed)
        decision = self._router.decide(
            parsed,
            strategy=pressure.strategy or strategy,
            blocked_models=pressure.blocked_models,
        )
        chain = decision.chain or []
        if not chain:
            raise JobError(f"the decision for job {parsed.id} has an empty chain")
        instance = self._pools.expand(chain[0].instance)
        clf = decision.classification
        tokens = clf.input_tokens if clf else 0
        envelope = Envelope(
            job=parsed,
            chain=chain,
            instance=instance,
            input_tokens=tokens,
            task_type=clf.type.value if clf else "",
            reserved_usd=reservation_usd(
                self.config, instance, chain[0].model, tokens, parsed.max_tokens
            ),
            cache_key=self._books.cache_key(parsed),
        )
        return envelope, decision

    def signature(self, job: Job | dict[str, Any], *, strategy: str | None = None) -> Signature:
        """A Celery signature for ``job``, to use inside a group, chord or chain.

        Sharp edge: lanes cannot know if or when a signature is sent, so such a job is not
        tracked for lost-message rescue (:mod:`broker.janitor`) until it hands on to a
        retry or fallback; :meth:`submit` tracks from the start.
        """
        envelope, _ = self.prepare(job, strategy=strategy)
        return signature(self.app, envelope)

    def submit(self, job: Job | dict[str, Any], *, strategy: str | None = None) -> JobHandle:
        """Route and enqueue ``job``. Re-submitting the same job under an idempotency key
        returns the first one; another job under that key is refused."""
        envelope, decision = self.prepare(job, strategy=strategy)
        job_id = envelope.job.id
        fingerprint = envelope.job.fingerprint()
        key = envelope.job.idempotency_key
        held = self._jobs.claim_idempotency(key, job_id, fingerprint) if key else None
        if held is not None:
            holder, same = held
            if not same:
                raise JobError(
                    f"idempotency key {key!r} was used for another job ({holder}): a key stands"
                    " for one job; use a new key for a different job"
                )
            return JobHandle(self.app.AsyncResult(holder), decision=None)
        clf = decision.classification
        answer = self._books.cached(envelope.job, envelope.cache_key, clf.vital if clf else False)
        try:
            # Tracked before it is sent: a message lost on its way to a worker is re-sent.
            wire = envelope.to_wire()
            claim = self._jobs.track(job_id, fingerprint, envelope.instance, wire)
            if claim is not Claim.NEW:
                return self._claimed(envelope, decision, claim)
            if answer is not None:
                return self._answered(
                    envelope, decision, self._books.cache_result(envelope, answer)
                )
            self._admit(envelope)
            result = publish(self.app, envelope, wire=wire)
        except (OperationalError, redis.RedisError, OSError, InfrastructureError) as exc:
            self._abandon(envelope.job)
            raise InfrastructureError(f"cannot enqueue job {job_id}: {exc}") from exc
        self._books.decided(envelope, decision)
        return JobHandle(result, decision=decision, instance=envelope.instance)

    def _admit(self, envelope: Envelope) -> None:
        """Reserve the job's spend on its budgets; BudgetExceeded (nothing kept) if a budget
        cannot take it."""
        budget = self._books.budget
        if budget is None:
            return
        try:
            budget.admit(envelope.job, envelope.instance, envelope.reserved_usd)
        except BudgetExceeded:
            self._abandon(envelope.job)
            raise

    def _answered(self, envelope: Envelope, decision: Decision, result: Result) -> JobHandle:
        """A cache hit: record its result at once (no message, no provider call)."""
        self._jobs.record(result)
        self._books.decided(envelope, decision, cached=result)
        return JobHandle(self.app.AsyncResult(result.job_id), decision=decision,
                         instance=envelope.instance)  # fmt: skip

    def _claimed(self, envelope: Envelope, decision: Decision, claim: Claim) -> JobHandle:
        """A job id that was submitted before: the same job again gets a handle on it (nothing
        is sent twice); another payload under the id is refused."""
        job_id = envelope.job.id
        if claim is Claim.CONFLICT:
            if envelope.job.idempotency_key:  # the key this refused job just claimed
                self._jobs.release_idempotency(envelope.job.idempotency_key, job_id)
            raise JobError(
                f"job id {job_id!r} already belongs to another job: an id is owned by the first"
                " job submitted under it (leave 'id' out to get a fresh one, or use"
                " 'idempotency_key' to submit the same job again)"
            )
        return JobHandle(self.app.AsyncResult(job_id), decision=decision, instance=None)

    def _abandon(self, job: Job) -> None:
        """Undo what a failed submit claimed, so that submitting again really sends the job.
        Best effort: Redis may be the reason the submit failed."""
        try:
            self._jobs.untrack(job.id)
            if job.idempotency_key:
                self._jobs.release_idempotency(job.idempotency_key, job.id)
            if self._books.budget is not None:
                self._books.budget.cancel(job.id)
        except InfrastructureError as exc:
            log.warning("job %s: could not undo a failed submit: %s", job.id, exc)
