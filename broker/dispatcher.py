"""The dispatcher: validate a job, route it, expand its pool, enqueue it on its lane.

::

    dispatcher = Dispatcher(config, app, client, router)
    handle = dispatcher.submit({"prompt": "Summarise ...", "max_tokens": 300})
    result = handle.get(timeout_s=60)        # or: await handle.wait(timeout_s=60)

Nothing is enqueued unless the job is valid and routable; errors are
:class:`kernel.errors.JobError` (bad job) or :class:`kernel.errors.NoRoute`.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import redis
from celery import Celery
from celery.canvas import Signature
from kombu.exceptions import OperationalError

from broker.app import RUN_TASK
from broker.handle import JobHandle
from broker.keys import Keys
from broker.message import Envelope
from broker.pending import PendingJobs
from broker.pools import PoolBalancer
from kernel.config import Config
from kernel.errors import InfrastructureError, JobError
from router.decision import Decision
from router.job import Job, parse_job
from router.lane_state import LaneStateReader, StaticLaneState

log = logging.getLogger("lanes.dispatcher")


class RouterLike(Protocol):
    def decide(self, job: Job, *, strategy: str | None = None) -> Decision: ...


class Dispatcher:
    def __init__(
        self,
        config: Config,
        app: Celery,
        client: redis.Redis,
        router: RouterLike,
        *,
        keys: Keys | None = None,
        lane_state: LaneStateReader | None = None,
    ) -> None:
        self.config = config
        self.app = app
        self._client = client
        self._router = router
        self._keys = keys or Keys()
        self._pools = PoolBalancer(config, client, self._keys, lane_state or StaticLaneState())
        self._pending = PendingJobs(client, self._keys, config.result_ttl_s)

    def prepare(
        self, job: Job | dict[str, Any], *, strategy: str | None = None
    ) -> tuple[Envelope, Decision]:
        """Validate and route ``job`` and expand its lane; enqueue nothing."""
        parsed = parse_job(job)
        decision = self._router.decide(parsed, strategy=strategy)
        chain = decision.chain or []
        if not chain:
            raise JobError(f"the decision for job {parsed.id} has an empty chain")
        instance = self._pools.expand(chain[0].instance)
        tokens = decision.classification.input_tokens if decision.classification else 0
        envelope = Envelope(job=parsed, chain=chain, instance=instance, input_tokens=tokens)
        return envelope, decision

    def signature(self, job: Job | dict[str, Any], *, strategy: str | None = None) -> Signature:
        """A Celery signature for ``job``, to use inside a group, chord or chain.

        Sharp edge: lanes cannot know if or when a signature is sent, so such a job is not
        tracked for lost-message rescue (:mod:`broker.janitor`) until it hands on to a
        retry or fallback; :meth:`submit` tracks from the start.
        """
        envelope, _ = self.prepare(job, strategy=strategy)
        return self._signature(envelope, envelope.to_wire())

    def submit(self, job: Job | dict[str, Any], *, strategy: str | None = None) -> JobHandle:
        """Route and enqueue ``job``. Re-submitting an idempotency key returns the first job."""
        envelope, decision = self.prepare(job, strategy=strategy)
        job_id = envelope.job.id
        existing = self._claim_idempotency(envelope.job)
        if existing is not None:
            return JobHandle(self.app.AsyncResult(existing), decision=None)
        try:
            # Tracked before it is sent: a message lost on its way to a worker is re-sent.
            wire = envelope.to_wire()
            self._pending.track(job_id, envelope.instance, wire)
            result = self._signature(envelope, wire).apply_async()
        except (OperationalError, redis.RedisError, OSError, InfrastructureError) as exc:
            self._abandon(envelope.job)
            raise InfrastructureError(f"cannot enqueue job {job_id}: {exc}") from exc
        return JobHandle(result, decision=decision, instance=envelope.instance)

    def _abandon(self, job: Job) -> None:
        """Undo what a failed submit claimed, so that submitting again really sends the job.
        Best effort: Redis may be the reason the submit failed."""
        try:
            self._pending.untrack(job.id)
            if job.idempotency_key:
                key = self._keys.idempotency(job.idempotency_key)
                if self._client.get(key) == job.id:
                    self._client.delete(key)
        except (InfrastructureError, redis.RedisError) as exc:
            log.warning("job %s: could not undo a failed submit: %s", job.id, exc)

    def _signature(self, envelope: Envelope, wire: dict[str, Any]) -> Signature:
        return self.app.signature(
            RUN_TASK,
            args=[wire],
            task_id=envelope.job.id,
            queue=envelope.instance,
            argsrepr=envelope.label(),
            kwargsrepr="{}",
        )

    def _claim_idempotency(self, job: Job) -> str | None:
        if not job.idempotency_key:
            return None
        key = self._keys.idempotency(job.idempotency_key)
        try:
            claimed = self._client.set(key, job.id, nx=True, ex=self.config.result_ttl_s)
            if claimed:
                return None
            existing = self._client.get(key)
        except redis.RedisError as exc:
            raise InfrastructureError(f"cannot reach Redis: {exc}") from exc
        return None if existing is None else str(existing)
