"""The Python entry point: connect to a lanes deployment and submit jobs.

::

    from lanes import Lanes
    with Lanes.connect() as lanes:                 # config from the default search path
        handle = lanes.submit({"prompt": "Summarise RFC 9110 in 5 bullets", "max_tokens": 400})
        print(handle.get(timeout_s=120).text)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import redis
from celery import Celery
from celery.canvas import Signature

from lanes.broker.connection import require_redis_url
from lanes.broker.handle import JobHandle
from lanes.broker.result import Result
from lanes.deployment import Deployment, open_deployment
from lanes.dispatch.dispatcher import Dispatcher
from lanes.dispatch.waiting import Collected, Waited, Waiter, collect
from lanes.kernel.config import Config, load_config
from lanes.kernel.errors import NoWorker
from lanes.layers.budgets.gate import BudgetGate, ledger_spent
from lanes.layers.build import dispatch_layers
from lanes.router.budgets import Hold
from lanes.router.decision import Decision
from lanes.router.engine import Router
from lanes.router.history import LearnedHistory
from lanes.router.job import Job
from lanes.router.lane_state import CachedLaneState
from lanes.stores import Stores, consumers
from lanes.stores.jobs import Cancelled
from lanes.stores.keys import Keys
from lanes.stores.ledger import PerformanceRow

if TYPE_CHECKING:
    from lanes.recipes.batch import BatchSummary
    from lanes.recipes.compare import Comparison
    from lanes.recipes.pipeline import Pipeline, PipelineRun
    from lanes.recipes.review.run import ReviewReport


class Lanes:
    """A connection to one deployment (:func:`lanes.deployment.open_deployment`): its Redis,
    its Celery app, a router and a dispatcher with the layers the config switches on.

    Every Redis key lives under the config's ``redis_prefix``. Thread-safe; one per process
    is enough.
    """

    def __init__(self, config: Config, redis_url: str) -> None:
        self.deployment: Deployment = open_deployment(config, redis_url)
        self.config = config
        # Routing reads lane state at most once a second; workers re-check before each call.
        self.lane_state = CachedLaneState(self.stores.lane_state, ttl_s=1.0)
        self.ledger = DispatcherLedger(self.deployment)
        self.history = LearnedHistory(config.learning, self.ledger.performance,
                                      pools=config.pools)  # fmt: skip
        self.router = Router(
            config, lane_state=self.lane_state, history=self.history, counter=self.stores.counter
        )
        gate = BudgetGate(config, self.stores.budget, self.ledger.spent)
        self.dispatcher = Dispatcher(
            config,
            self.app,
            self.router,
            self.stores,
            lane_state=self.lane_state,
            layers=dispatch_layers(config, self.stores, budget=gate),
            on_tracked=self.lane_state.count_tracked,
        )
        self.waiter = Waiter(self.stores.jobs, served=self.served)

    @property
    def redis_url(self) -> str:
        return self.deployment.redis_url

    @property
    def redis(self) -> redis.Redis:
        return self.deployment.redis

    @property
    def keys(self) -> Keys:
        return self.deployment.keys

    @property
    def stores(self) -> Stores:
        return self.deployment.stores

    @property
    def app(self) -> Celery:
        return self.deployment.app

    @classmethod
    def connect(cls, config: Config | None = None, *, config_path: Path | None = None) -> Lanes:
        """Connect with ``config`` (or load it) to its Redis (which must be running)."""
        cfg = config or load_config(config_path)
        return cls(cfg, require_redis_url(cfg))

    def submit(self, job: Job | dict[str, Any], *, strategy: str | None = None) -> JobHandle:
        """Route and enqueue ``job``; wait for its :class:`Result` with the handle."""
        return self.dispatcher.submit(job, strategy=strategy)

    def submit_group(
        self, jobs: Sequence[Job | dict[str, Any]], *, strategy: str | None = None
    ) -> list[JobHandle]:
        """Route every job and send them together as one Celery group, all or nothing
        (:meth:`lanes.dispatch.dispatcher.Dispatcher.submit_group`)."""
        return self.dispatcher.submit_group(jobs, strategy=strategy)

    def submit_chain(
        self,
        jobs: Sequence[Job | dict[str, Any]],
        *,
        strategy: str | None = None,
        labels: Sequence[str] = (),
    ) -> list[JobHandle]:
        """Route every job and send them as one Celery chain, each step fed the answer of the
        one before (:meth:`lanes.dispatch.dispatcher.Dispatcher.submit_chain`)."""
        return self.dispatcher.submit_chain(jobs, strategy=strategy, labels=labels)

    def run(
        self,
        job: Job | dict[str, Any],
        *,
        strategy: str | None = None,
        timeout_s: float | None = 600.0,
        raise_on_failure: bool = True,
    ) -> Result:
        """Submit ``job`` and wait for its :class:`Result` (``JobFailed`` if it failed, unless
        told not to; ``JobTimeout`` after ``timeout_s``)."""
        handle = self.submit(job, strategy=strategy)
        return handle.get(timeout_s=timeout_s, raise_on_failure=raise_on_failure)

    async def asubmit(self, job: Job | dict[str, Any], *, strategy: str | None = None) -> JobHandle:
        """:meth:`submit` without blocking the event loop (routing and enqueueing run in a
        thread)."""
        return await asyncio.to_thread(self.submit, job, strategy=strategy)

    async def arun(
        self,
        job: Job | dict[str, Any],
        *,
        strategy: str | None = None,
        timeout_s: float | None = 600.0,
        raise_on_failure: bool = True,
    ) -> Result:
        """:meth:`run` for asyncio: await the result without blocking the event loop."""
        handle = await self.asubmit(job, strategy=strategy)
        return await handle.wait(timeout_s=timeout_s, raise_on_failure=raise_on_failure)

    def review(self, diff: str, **options: Any) -> ReviewReport:
        """Fan ``diff`` out to the configured reviewers as one Celery group and wait for the
        report (:func:`lanes.recipes.review.run.review` lists the options)."""
        from lanes.recipes.review.run import review

        return review(self, diff, **options)

    async def areview(self, diff: str, **options: Any) -> ReviewReport:
        from lanes.recipes.review.run import areview

        return await areview(self, diff, **options)

    def batch(self, in_path: str | Path, out_path: str | Path, **options: Any) -> BatchSummary:
        """Run every line of a JSONL file, results streamed to ``out_path``, resumable
        (:func:`lanes.recipes.batch.run_batch` lists the options)."""
        from lanes.recipes.batch import run_batch

        options.setdefault("unserved", self.unserved)
        return run_batch(self, Path(in_path), Path(out_path), **options)

    async def abatch(
        self, in_path: str | Path, out_path: str | Path, **options: Any
    ) -> BatchSummary:
        from lanes.recipes.batch import arun_batch

        options.setdefault("unserved", self.unserved)
        return await arun_batch(self, Path(in_path), Path(out_path), **options)

    def pipeline(
        self, pipeline: Pipeline | str | Path, input_text: str, **options: Any
    ) -> PipelineRun:
        """Run a pipeline (a :class:`lanes.recipes.pipeline.Pipeline` or a pipeline file) on
        ``input_text`` as one Celery chain and wait for every step."""
        from lanes.recipes.pipeline import run_pipeline

        return run_pipeline(self, _pipeline(pipeline), input_text, **options)

    async def apipeline(
        self, pipeline: Pipeline | str | Path, input_text: str, **options: Any
    ) -> PipelineRun:
        from lanes.recipes.pipeline import arun_pipeline

        return await arun_pipeline(self, _pipeline(pipeline), input_text, **options)

    def compare(
        self, job: dict[str, Any], lanes: str | list[str], *, timeout_s: float = 600.0
    ) -> Comparison:
        """Run ``job`` on each of ``lanes`` (lanes, pools or ``lane:model``) at once."""
        from lanes.recipes.compare import compare, parse_targets

        text = lanes if isinstance(lanes, str) else ",".join(lanes)
        return compare(self, job, parse_targets(self.config, text), timeout_s=timeout_s)

    def served(self, lanes: Collection[str]) -> set[str]:
        """Those of ``lanes`` that some worker consumes now (:mod:`lanes.stores.consumers`)."""
        return consumers.served(self.redis, self.keys, lanes)

    def wait(self, handles: Sequence[JobHandle], timeout_s: float) -> Waited:
        """Every job's result (None: not finished within ``timeout_s``), stopping early when
        the jobs still waiting wait on lanes no worker consumes (``no_worker`` says so). The
        jobs are left as they are (:meth:`collect` gives up on the late ones)."""
        return self.waiter.wait([h.id for h in handles], time.monotonic() + timeout_s)

    def unserved(self, job_ids: Sequence[str]) -> NoWorker | None:
        """Why some of ``job_ids`` cannot finish: they wait on lanes no worker consumes."""
        return self.waiter.unserved(job_ids)

    def cancel(self, handles: Sequence[JobHandle], reason: str) -> list[Cancelled]:
        """Give up on jobs: they end failed with ``reason`` and start no provider call from
        now on; a call already running finishes and is billed."""
        return self.dispatcher.cancel(handles, reason)

    def collect(self, handles: Sequence[JobHandle], deadline: float, reason: str) -> Collected:
        """Wait for ``handles`` until ``deadline`` (``time.monotonic``), then cancel the
        unfinished ones with ``reason``; at once when they wait on lanes no worker consumes."""
        return collect(self.waiter, handles, deadline, self.cancel, reason)

    def job(self, job_id: str) -> JobHandle:
        """A handle on a job submitted earlier (by any process), by its id."""
        return JobHandle(self.app.AsyncResult(job_id), decision=None, streams=self.stores.streams)

    def route(self, job: Job | dict[str, Any], *, strategy: str | None = None) -> Decision:
        """Where ``job`` would go and why; enqueues nothing."""
        _, decision = self.dispatcher.prepare(job, strategy=strategy)
        return decision

    def signature(self, job: Job | dict[str, Any], *, strategy: str | None = None) -> Signature:
        """``job`` as a Celery signature, for a group, chord or chain (see the README)."""
        return self.dispatcher.signature(job, strategy=strategy)

    def close(self) -> None:
        self.deployment.close()

    def __enter__(self) -> Lanes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _pipeline(pipeline: Pipeline | str | Path) -> Pipeline:
    from lanes.recipes.pipeline import Pipeline, load_pipeline

    return pipeline if isinstance(pipeline, Pipeline) else load_pipeline(Path(pipeline))


class DispatcherLedger:
    """What a dispatcher reads from the deployment's ledger (learned performance; spend to
    rebuild budget counters), the database opened on first use, never at connect: routing
    must not wait for a database."""

    def __init__(self, deployment: Deployment) -> None:
        self._config = deployment.config
        self._ledger = deployment.ledger

    def performance(self) -> list[PerformanceRow]:
        if not self._config.ledger.enabled:
            return []
        return self._ledger.get().performance()

    def spent(self, hold: Hold) -> float:
        return ledger_spent(self._ledger.get())(hold)
