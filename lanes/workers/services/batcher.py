"""Send parked jobs to their lanes' batch APIs, and answer them when the batches end.

Every worker process runs a batcher thread; locks in the batch store make one process do
each piece of work at a time. One :meth:`Batcher.tick`:

1. for each (instance, model) with a batch API: take the jobs parked there into a batch once
   the oldest has waited ``batch.gather_window_s`` (or enough wait to fill one), within the
   lane's ``max_requests``, ``max_bytes`` and ``max_queued``; submit it; record its id;
2. for each open batch, at most every ``batch.poll_interval_s``: take out the members whose
   deadline is near (they run as calls; a batch left with none is cancelled), ask whether it
   ended and, once it has, record each answer as its job's one result, priced at the batch
   rate. A member that errored, was cancelled or expired runs as a call (a retryable error)
   or fails (one that is not), like a failed call.

What survives a crash: parked jobs and open batches live in the batch store. A batch whose
process died before its provider id was recorded cannot be found again at the provider: after
``batch.submit_stale_s`` its members run as calls (if it was submitted after all, its answers
are billed and dropped, and they are not in the ledger: the one loss this design allows).
A member's answer is recorded once whoever reads it (the job store keeps the first result),
and its charge once per call number.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable

from celery import Celery

from lanes.broker.message import Envelope
from lanes.kernel.config import Config
from lanes.kernel.errors import BadAnswer, InfrastructureError, LanesError, ProviderError
from lanes.layers.hooks import Call
from lanes.stores.batches import OpenBatch
from lanes.workers.answers import checked
from lanes.workers.context import WorkerContext
from lanes.workers.parking import resend, unpark
from lanes.workers.providers.batch_api import BatchItem, BatchOutcome, BatchProvider
from lanes.workers.records import success_result
from lanes.workers.requests import provider_request
from lanes.workers.runner import fail_step

log = logging.getLogger("lanes.batcher")

BatchProviderFactory = Callable[[Config, str], BatchProvider]
TICK_S = 0.2
"""How often a batcher thread looks for work (each piece is throttled on its own)."""
WORK_LOCK_S = 300.0
"""Longest a process may hold one piece of batch work before another may take it over."""


class Batcher:
    def __init__(
        self, ctx: WorkerContext, app: Celery, factory: BatchProviderFactory,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self._ctx = ctx
        self._app = app
        self._factory = factory
        self._clock = clock
        self._store = ctx.stores.batches
        self._clients: dict[str, BatchProvider] = {}

    def lanes(self) -> list[tuple[str, str]]:
        """Every (instance, model) whose jobs may be batched."""
        config = self._ctx.config
        return [(name, model) for name, spec in config.instances.items()
                if config.batches_on(name) for model in spec.models]  # fmt: skip

    def tick(self) -> None:
        open_batches = self._store.open_batches()
        lanes = self.lanes()
        for (instance, model), waiting in zip(lanes, self._store.waiting(lanes), strict=True):
            if waiting:
                self._gather(instance, model, open_batches)
        for batch in open_batches:
            try:
                self._tend(batch)
            except ProviderError as exc:  # this batch only: the others are tended all the same
                log.warning("batch %s on %s not tended: %s", batch.provider_id, batch.instance,
                            exc)  # fmt: skip

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def _client(self, instance: str) -> BatchProvider:
        if instance not in self._clients:
            self._clients[instance] = self._factory(self._ctx.config, instance)
        return self._clients[instance]

    # -- gathering ---------------------------------------------------------------------------
    def _gather(self, instance: str, model: str, open_batches: list[OpenBatch]) -> None:
        spec = self._ctx.config.instances[instance].batch
        assert spec is not None
        queued = sum(len(b.members) for b in open_batches if b.instance == instance)
        room = min(spec.max_requests, spec.max_queued - queued)
        if room <= 0:
            return
        name = f"gather:{instance}:{model}"
        if not self._store.lock(name, WORK_LOCK_S):
            return
        try:
            batch_id = uuid.uuid4().hex
            taken = self._store.take(
                instance, model, batch_id, most=room, most_bytes=spec.max_bytes,
                window_s=self._ctx.config.batch.gather_window_s, now_s=self._clock(),
            )  # fmt: skip
            if taken:
                self._submit(OpenBatch(batch_id, instance, model, self._clock(), taken))
        finally:
            self._store.unlock(name)

    def _submit(self, batch: OpenBatch) -> None:
        items: list[BatchItem] = []
        custom_ids: dict[str, str] = {}
        parked_jobs = self._store.members(batch.members)
        for index, (job_id, parked) in enumerate(zip(batch.members, parked_jobs, strict=True)):
            if parked is None:
                continue
            env = Envelope.model_validate(parked.envelope)
            custom_id = f"m{index}"
            custom_ids[custom_id] = job_id
            items.append(BatchItem(custom_id, provider_request(self._ctx.config, env)))
        if not items:  # every member was settled meanwhile
            self._store.close(batch.batch_id)
            return
        try:
            provider_id = self._client(batch.instance).submit(items)
        except ProviderError as exc:
            log.warning("batch of %d on %s/%s refused (%s): its jobs run as calls",
                        len(items), batch.instance, batch.model, exc)  # fmt: skip
            self._unbatch(batch.members)
            self._store.close(batch.batch_id)
            return
        self._store.submitted(batch.batch_id, provider_id, custom_ids)
        log.info("batch %s: %d jobs sent to %s/%s", provider_id, len(items), batch.instance,
                 batch.model)  # fmt: skip

    # -- tending -----------------------------------------------------------------------------
    def _tend(self, batch: OpenBatch) -> None:
        spec = self._ctx.config.batch
        # The poll lock is never released: it lapses, so one process polls per interval.
        if not self._store.lock(f"poll:{batch.batch_id}", spec.poll_interval_s):
            return
        name = f"work:{batch.batch_id}"
        if not self._store.lock(name, WORK_LOCK_S):
            return
        try:
            self._tend_locked(batch)
        finally:
            self._store.unlock(name)

    def _tend_locked(self, batch: OpenBatch) -> None:
        if batch.provider_id is None:
            if self._clock() - batch.created_at >= self._ctx.config.batch.submit_stale_s:
                log.warning("batch %s never recorded its submission: its jobs run as calls",
                            batch.batch_id)  # fmt: skip
                self._unbatch(batch.members)
                self._store.close(batch.batch_id)
            return
        client = self._client(batch.instance)
        live = self._withdraw_due(batch)
        try:
            status = client.status(batch.provider_id)
        except ProviderError as exc:
            if exc.retryable:
                raise
            log.warning("batch %s is gone (%s): its jobs run as calls", batch.provider_id, exc)
            self._unbatch(batch.members)
            self._store.close(batch.batch_id)
            return
        if not status.ended:
            if not live and "cancel" not in status.status:
                client.cancel(batch.provider_id)
            return
        outcomes = client.results(batch.provider_id)
        answered: set[str] = set()
        for outcome in outcomes:
            job_id = batch.custom_ids.get(outcome.custom_id)
            if job_id is not None:
                answered.add(job_id)
                self._settle(job_id, outcome)
        self._unbatch(job for job in batch.members if job not in answered)
        self._store.close(batch.batch_id)
        log.info("batch %s ended: %d answers", batch.provider_id, len(outcomes))

    def _withdraw_due(self, batch: OpenBatch) -> int:
        """Run as calls the members whose deadline is near; how many members are left."""
        margin_s = self._ctx.config.batch.withdraw_margin_s
        now = self._clock()
        left = 0
        parked_jobs = self._store.members(batch.members)
        for job_id, parked in zip(batch.members, parked_jobs, strict=True):
            if parked is None or parked.withdrawn:
                continue
            due_at = parked.envelope.get("due_at")  # read raw: most members are not due
            if due_at is not None and now >= due_at - margin_s:
                env = Envelope.model_validate(parked.envelope)
                log.warning("job %s: its deadline is near; taken out of batch %s", job_id,
                            batch.provider_id)  # fmt: skip
                self._store.withdraw(job_id)
                resend(self._ctx, self._app, env, env.unbatched())
                continue
            left += 1
        return left

    def _settle(self, job_id: str, outcome: BatchOutcome) -> None:
        """Record one member's answer (or send it on as a call), then forget it."""
        parked = self._store.member(job_id)
        if parked is None:
            return  # settled already, by a process that died before closing the batch
        env = Envelope.model_validate(parked.envelope)
        call = Call(env, parked.call)
        ctx = self._ctx
        if outcome.kind == "succeeded" and outcome.response is not None:
            try:
                response = checked(env.job, outcome.response)
            except BadAnswer as exc:
                outcome = BatchOutcome(outcome.custom_id, "errored", error=exc)
        if outcome.kind == "succeeded" and outcome.response is not None:
            result = success_result(ctx.config, env, response)
            events = ctx.layers.success_events(call, result)
            ctx.stores.frame.after_success(result, None, events)
            ctx.layers.after_success(call, result)
            ctx.stores.batches.forget([job_id])
            return
        if outcome.error is not None:
            ctx.layers.after_failure(call, outcome.error, None)
        else:
            ctx.layers.after_skip(call)
        if parked.withdrawn:
            ctx.stores.batches.forget([job_id])  # it runs as a call already
        elif outcome.error is not None and not outcome.error.retryable:
            reason = f"{type(outcome.error).__name__} in a batch on {env.instance}: {outcome.error}"
            fail_step(ctx, env, reason)
            ctx.stores.batches.forget([job_id])
        else:
            unpark(ctx, self._app, env, env.unbatched())

    def _unbatch(self, job_ids: Iterable[str]) -> None:
        """Send the members that are not withdrawn back to their lanes as calls."""
        wanted = list(job_ids)
        for job_id, parked in zip(wanted, self._store.members(wanted), strict=True):
            if parked is None:
                continue
            env = Envelope.model_validate(parked.envelope)
            if parked.withdrawn:
                self._store.forget([job_id])
            else:
                unpark(self._ctx, self._app, env, env.unbatched())


def start_batcher(batcher: Batcher, stop: threading.Event) -> threading.Thread:
    """Tick ``batcher`` until ``stop`` is set (a daemon thread)."""

    def loop() -> None:
        while not stop.wait(TICK_S):
            try:
                batcher.tick()
            except (InfrastructureError, ProviderError) as exc:
                log.warning("batcher round skipped: %s", exc)
            except LanesError as exc:
                log.error("batcher round failed: %s", exc)
        batcher.close()

    thread = threading.Thread(target=loop, name="lanes-batcher", daemon=True)
    thread.start()
    return thread
