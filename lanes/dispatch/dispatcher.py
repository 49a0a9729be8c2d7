"""The dispatcher: validate a job, route it, expand its pool, enqueue it on its lane.

::

    dispatcher = Dispatcher(config, app, router, stores)
    handle = dispatcher.submit({"prompt": "Summarise ...", "max_tokens": 300})
    result = handle.get(timeout_s=60)        # or: await handle.wait(timeout_s=60)

Nothing is enqueued unless the job is valid, routable and admitted; errors are
:class:`lanes.kernel.errors.JobError` (bad job), :class:`lanes.kernel.errors.NoRoute` or a
layer's refusal. A layer may also answer a job instead of sending it.

What the dispatcher does besides routing and sending is done by layers around it
(:mod:`lanes.layers`): it calls them at each point by their hooks and knows none of them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import redis
from celery import Celery, group
from celery import chain as celery_chain
from celery.canvas import Signature
from celery.result import AsyncResult
from kombu.exceptions import OperationalError

from lanes.broker import counters as metrics
from lanes.broker.handle import JobHandle, given_up
from lanes.broker.message import Envelope, publish, signature
from lanes.broker.result import Result
from lanes.dispatch.pools import PoolBalancer
from lanes.dispatch.savings import batch_due_at, prefix_member
from lanes.kernel.config import Config
from lanes.kernel.errors import InfrastructureError, JobError, LanesError
from lanes.layers.build import dispatch_layers
from lanes.layers.hooks import DispatchLayer
from lanes.layers.reservation import reservation_usd
from lanes.router.decision import Decision
from lanes.router.job import Job, parse_job
from lanes.router.lane_state import LaneStateReader
from lanes.stores import Stores
from lanes.stores.jobs import Cancelled, Claim, Tracked

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
        layers: DispatchLayer | None = None,
        on_tracked: Callable[[str], None] | None = None,
    ) -> None:
        """``lane_state``: what pool expansion reads (default: the stores' live lane state; a
        caller may pass a cached view of it). ``layers``: the features around the dispatch
        (default: those the config switches on, without budgets:
        :func:`lanes.layers.build.dispatch_layers`). ``on_tracked``: told the instance of each
        new job once it is tracked (a cached lane view counts it in the lane's backlog)."""
        self._on_tracked = on_tracked
        self.config = config
        self.app = app
        self._router = router
        self._jobs = stores.jobs
        self._layers = layers if layers is not None else dispatch_layers(config, stores)
        self._lane_state = lane_state or stores.lane_state
        self._pools = PoolBalancer(config, stores.counter, self._lane_state)
        self._prefixes = stores.prefixes
        self._streams = stores.streams
        self._replication = stores.replication
        self._unsent: dict[str, tuple[Envelope, Decision, dict[str, Any]]] = {}
        """Jobs whose submit failed and whose claim could not be undone (Redis away): a
        re-submit of one sends it, where it would otherwise get a handle on a job never sent
        (on Redis the janitor would find it; on RabbitMQ nothing would)."""
        self._unsent_lock = threading.Lock()

    def prepare(
        self, job: Job | dict[str, Any], *, strategy: str | None = None, alone: bool = True
    ) -> tuple[Envelope, Decision]:
        """Validate and route ``job`` and expand its lane; enqueue nothing. ``alone``: not a
        link of a chain (only such a job may wait in a provider batch: a chain's next link
        starts when the worker is done with this one)."""
        parsed = parse_job(job)
        size = parsed.payload_bytes()
        if size > self.config.max_job_bytes:
            raise JobError(
                f"job {parsed.id} carries {size} bytes of prompt, system, messages and metadata;"
                f" the limit is {self.config.max_job_bytes} (max_job_bytes in the config)"
            )
        pressure = self._layers.before_routing(parsed)
        decision = self._router.decide(
            parsed,
            strategy=pressure.strategy or strategy,
            blocked_models=pressure.blocked_models,
        )
        chain = decision.chain or []
        if not chain:
            raise JobError(f"the decision for job {parsed.id} has an empty chain")
        clf = decision.classification
        tokens = clf.input_tokens if clf else 0
        instance = prefix_member(
            self.config, self._prefixes, self._lane_state, parsed,
            (chain[0].instance, chain[0].model), self._pools.expand(chain[0].instance), tokens,
        )  # fmt: skip
        due_at = batch_due_at(self.config, parsed, instance) if alone else None
        envelope = Envelope(
            job=parsed,
            chain=chain,
            instance=instance,
            input_tokens=tokens,
            task_type=clf.type.value if clf else "",
            reserved_usd=reservation_usd(
                self.config,
                instance,
                chain[0].model,
                tokens,
                parsed.max_tokens,
                batch=due_at is not None,
            ),
            batch=due_at is not None,
            due_at=due_at,
        )
        return self._layers.after_decision(envelope, decision), decision

    def signature(self, job: Job | dict[str, Any], *, strategy: str | None = None) -> Signature:
        """A Celery signature for ``job``, to use inside a group, chord or chain.

        Sharp edge: lanes cannot know if or when a signature is sent, so such a job is not
        tracked for lost-message rescue (:mod:`lanes.workers.services.janitor`) until it hands on
        to a retry or fallback; :meth:`submit` tracks from the start.
        """
        envelope, _ = self.prepare(job, strategy=strategy)
        return signature(self.app, envelope)

    def _handle(
        self, result: AsyncResult, decision: Decision | None, instance: str | None = None
    ) -> JobHandle:
        return JobHandle(result, decision=decision, instance=instance, streams=self._streams)

    def submit(self, job: Job | dict[str, Any], *, strategy: str | None = None) -> JobHandle:
        """Route and enqueue ``job``. Re-submitting the same job under an idempotency key
        returns the first one; another job under that key is refused."""
        staged = self._stage(job, strategy)
        if isinstance(staged, JobHandle):
            with self._unsent_lock:
                unsent = self._unsent.pop(staged.id, None)
            if unsent is None:
                return staged
            staged = unsent
        envelope, decision, wire = staged
        try:
            result = publish(self.app, envelope, wire=wire)
        except (OperationalError, redis.RedisError, OSError) as exc:
            if not self._abandon(envelope.job):
                with self._unsent_lock:
                    self._unsent[envelope.job.id] = staged
            raise InfrastructureError(f"cannot enqueue job {envelope.job.id}: {exc}") from exc
        self._sent(envelope, decision)
        self._replication.settle()
        return self._handle(result, decision, envelope.instance)

    def submit_group(
        self, jobs: Sequence[Job | dict[str, Any]], *, strategy: str | None = None
    ) -> list[JobHandle]:
        """Route every job, then send them together as one Celery group (each on its own
        lane, tracked and admitted like :meth:`submit`). All or nothing: if one job is refused
        (bad, unroutable, over budget) or the group cannot be sent, none is kept."""
        staged: list[JobHandle | tuple[Envelope, Decision, dict[str, Any]]] = []
        try:
            for job in jobs:
                staged.append(self._stage(job, strategy))
            sending = [s for s in staged if not isinstance(s, JobHandle)]
            sent = group(signature(self.app, env, wire=wire) for env, _, wire in sending)
            results = iter(sent.apply_async().results if sending else [])
        except (OperationalError, redis.RedisError, OSError, LanesError) as exc:
            for item in staged:
                if not isinstance(item, JobHandle):
                    self._abandon(item[0].job)
            if isinstance(exc, LanesError):
                raise
            raise InfrastructureError(f"cannot enqueue a group of jobs: {exc}") from exc
        handles = []
        for item in staged:
            if isinstance(item, JobHandle):
                handles.append(item)
                continue
            envelope, decision, _ = item
            self._sent(envelope, decision)
            handles.append(self._handle(next(results), decision, envelope.instance))
        self._replication.settle()
        return handles

    def submit_chain(
        self,
        jobs: Sequence[Job | dict[str, Any]],
        *,
        strategy: str | None = None,
        labels: Sequence[str] = (),
    ) -> list[JobHandle]:
        """Route every job and send them as one Celery chain: each job a step that runs on
        its own lane once the one before it has finished, its prompt fed that step's answer
        (:mod:`lanes.broker.chain_links`). The first step is tracked like a submit; the later ones
        are reserved on their budgets now and tracked once they run (they cannot be lost before
        they are sent). All or nothing, like :meth:`submit_group`. ``labels`` name the steps
        in a refusal (``step extract: ...``)."""
        if not jobs:
            raise JobError("a chain needs at least one job")
        names = list(labels) or [f"job {i + 1} of the chain" for i in range(len(jobs))]
        try:
            first = self._stage(jobs[0], strategy, alone=False)
        except LanesError as exc:
            raise exc.within(names[0]) from None
        if isinstance(first, JobHandle):
            raise JobError("the first job of a chain must be new and not answered from the cache")
        envelopes = [first[0]]
        decisions = [first[1]]
        try:
            for name, job in zip(names[1:], jobs[1:], strict=True):
                try:
                    envelope, decision = self.prepare(job, strategy=strategy, alone=False)
                    fed_tokens = envelope.input_tokens + envelopes[-1].job.max_tokens
                    envelope = envelope.model_copy(update={"input_tokens": fed_tokens})
                    self._admit(envelope)
                except LanesError as exc:
                    raise exc.within(name) from None
                envelopes.append(envelope)
                decisions.append(decision)
            links = [signature(self.app, envelopes[0], wire=first[2])]
            links += [signature(self.app, env) for env in envelopes[1:]]
            celery_chain(*links).apply_async()
        except (OperationalError, redis.RedisError, OSError, LanesError) as exc:
            for envelope in envelopes:
                self._abandon(envelope.job)
            if isinstance(exc, LanesError):
                raise
            raise InfrastructureError(f"cannot enqueue a chain of jobs: {exc}") from exc
        handles = []
        for envelope, decision in zip(envelopes, decisions, strict=True):
            self._sent(envelope, decision)
            result = self.app.AsyncResult(envelope.job.id)
            handles.append(self._handle(result, decision, envelope.instance))
        self._replication.settle()
        return handles

    def cancel(self, handles: Sequence[JobHandle], reason: str) -> list[Cancelled]:
        """Give up on the jobs of ``handles``: each ends failed with ``reason`` (unless it
        ended already) and no provider call of it starts from now on, wherever its message is;
        a call already running finishes and is billed. The layers hear of it (and give back
        at once what they hold for jobs that never started a call)."""
        done = self._jobs.cancel([given_up(handle, reason) for handle in handles])
        self._layers.after_cancel(done)
        return done

    def _stage(
        self, job: Job | dict[str, Any], strategy: str | None, *, alone: bool = True
    ) -> JobHandle | tuple[Envelope, Decision, dict[str, Any]]:
        """Everything of a submit but the sending: route, claim the id (and idempotency key),
        let the layers answer it instead or admit it. A handle when nothing is to be sent (an
        earlier job, an answer); else the envelope to send, its decision and its wire."""
        envelope, decision = self.prepare(job, strategy=strategy, alone=alone)
        staged = envelope.job
        try:
            # Tracked before it is sent: a message lost on its way to a worker is re-sent.
            wire = envelope.to_wire()
            tracked = self._jobs.track(
                staged.id, staged.fingerprint(), envelope.instance, wire, staged.idempotency_key
            )
            if tracked.claim is not Claim.NEW:
                return self._claimed(envelope, decision, tracked)
            if self._on_tracked is not None:
                self._on_tracked(envelope.instance)
            answer = self._layers.short_circuit(envelope, decision)
            if answer is not None:
                return self._answered(envelope, decision, answer)
            self._admit(envelope)
        except (redis.RedisError, OSError, InfrastructureError) as exc:
            self._abandon(staged)
            raise InfrastructureError(f"cannot enqueue job {staged.id}: {exc}") from exc
        return envelope, decision, wire

    def _admit(self, envelope: Envelope) -> None:
        """Let the layers admit the job; a refusal keeps nothing."""
        try:
            self._layers.at_admit(envelope)
        except InfrastructureError:
            raise  # not a refusal: the caller undoes the submit
        except LanesError:
            self._abandon(envelope.job)
            raise

    def _sent(self, envelope: Envelope, decision: Decision) -> None:
        metrics.decided(decision.strategy, envelope.instance)
        self._layers.after_send(envelope, decision)

    def _answered(self, envelope: Envelope, decision: Decision, result: Result) -> JobHandle:
        """Answered by a layer instead of sent: record its result at once (no message, no
        provider call)."""
        self._jobs.record(result)
        metrics.decided(decision.strategy, envelope.instance)
        self._layers.after_answer(envelope, decision, result)
        return self._handle(self.app.AsyncResult(result.job_id), decision, envelope.instance)

    def _claimed(self, envelope: Envelope, decision: Decision, tracked: Tracked) -> JobHandle:
        """A job submitted before: the same job again gets a handle on the first one (nothing
        is sent twice); another payload under its id or its idempotency key is refused."""
        job_id, key = envelope.job.id, envelope.job.idempotency_key
        match tracked.claim:
            case Claim.KEY_SAME:
                return self._handle(self.app.AsyncResult(tracked.job_id), None)
            case Claim.KEY_CONFLICT:
                raise JobError(
                    f"idempotency key {key!r} was used for another job ({tracked.job_id}): a key"
                    " stands for one job; use a new key for a different job"
                )
            case Claim.CONFLICT:
                raise JobError(
                    f"job id {job_id!r} already belongs to another job: an id is owned by the"
                    " first job submitted under it (leave 'id' out to get a fresh one, or use"
                    " 'idempotency_key' to submit the same job again)"
                )
        return self._handle(self.app.AsyncResult(job_id), decision)

    def _abandon(self, job: Job) -> bool:
        """Undo what a failed submit claimed, so that submitting again really sends the job;
        whether it was undone. Best effort: Redis may be the reason the submit failed."""
        try:
            self._jobs.untrack(job.id, job.idempotency_key)
            self._layers.after_abandon(job)
        except InfrastructureError as exc:
            log.warning("job %s: could not undo a failed submit: %s", job.id, exc)
            return False
        return True
