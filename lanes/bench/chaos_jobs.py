"""The jobs of ``lanes bench chaos``: submitted like a caller would, watched, then audited.

A caller whose submit fails with :class:`InfrastructureError` (Redis down) submits the same
job (same id, same idempotency key) again; only accepted submits count. Each job's
*caller-visible* result is the first one its handle reports; the audit compares it with what
the workers recorded and charged (:class:`lanes.stores.jobs.JobStore`).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import Celery
from celery.result import AsyncResult
from kombu.exceptions import OperationalError

from lanes.bench.throughput import PROMPTS
from lanes.broker.handle import JobHandle
from lanes.broker.result import Result
from lanes.client import Lanes
from lanes.kernel.errors import InfrastructureError, NoRoute
from lanes.stores.jobs import JobStore

_RETRY_SUBMIT_S = 0.25
_COST_TOLERANCE_USD = 1e-12
_EXAMPLES = 5
"""Job ids kept per kind of problem, to look them up in the logs."""


@dataclass(frozen=True)
class JobMix:
    """Which share of jobs is pinned to the failing lane (with a fallback chain), and which
    share carries an idempotency key."""

    pinned_lane: str = "zai"
    pinned_chain: str | None = "cheap"
    pinned_share: float = 0.15
    idempotent_share: float = 0.25


def chaos_jobs(count: int, run_id: str, mix: JobMix, rng: random.Random) -> list[dict[str, Any]]:
    """``count`` jobs with fixed ids (``<run_id>-00042``) and varied prompts and sizes."""
    jobs = []
    for i in range(count):
        job: dict[str, Any] = {
            "id": f"{run_id}-{i:05d}",
            "prompt": f"{PROMPTS[i % len(PROMPTS)]} (case {i}, variant {rng.randint(1, 999)})",
            "max_tokens": rng.choice((32, 64, 96, 128)),
        }
        if rng.random() < mix.pinned_share:
            job["instance"] = mix.pinned_lane
            job["vital"] = False  # the pin is the caller's choice, even for vital-looking text
            if mix.pinned_chain:
                job["chain"] = mix.pinned_chain
        if rng.random() < mix.idempotent_share:
            job["idempotency_key"] = f"{run_id}-key-{i}"
        jobs.append(job)
    return jobs


@dataclass(frozen=True)
class Accepted:
    job: dict[str, Any]
    handle: JobHandle


class Submitter(threading.Thread):
    """Submits ``jobs`` evenly over ``window_s``; retries a submit refused for lack of Redis."""

    def __init__(
        self,
        lanes: Lanes,
        jobs: list[dict[str, Any]],
        *,
        window_s: float,
        stop: threading.Event,
        progress: Callable[[str], None],
    ) -> None:
        super().__init__(name="chaos-submitter", daemon=True)
        self._lanes = lanes
        self._jobs = jobs
        self._window_s = window_s
        self._halt = stop
        self._progress = progress
        self.accepted: list[Accepted] = []
        self.submit_retries = 0
        self.no_route = 0
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self._submit_all()
        except Exception as exc:  # handed to the main thread, which raises it
            self.error = exc

    def _submit_all(self) -> None:
        started = time.monotonic()
        pace_s = self._window_s / max(len(self._jobs), 1)
        for i, job in enumerate(self._jobs):
            if self._halt.wait(max(0.0, started + i * pace_s - time.monotonic())):
                return
            handle = self._submit(job)
            if handle is not None:
                self.accepted.append(Accepted(job, handle))
            if (i + 1) % 100 == 0:
                self._progress(f"submitted {i + 1}/{len(self._jobs)} jobs")

    def _submit(self, job: dict[str, Any]) -> JobHandle | None:
        while not self._halt.is_set():
            try:
                return self._lanes.submit(job)
            except InfrastructureError:
                self.submit_retries += 1
                self._halt.wait(_RETRY_SUBMIT_S)
            except NoRoute:
                self.no_route += 1
                return None
        return None


@dataclass(frozen=True)
class Seen:
    """What a caller got from a handle: a result dict, or the error its handle raised."""

    result: dict[str, Any] | None
    error: str | None = None


class Watcher(threading.Thread):
    """Polls handles the way a waiting caller would and keeps the first outcome of each,
    from the first submit until :attr:`done` is set.

    A ready job's outcome is read from the result backend (``app``), as ``JobHandle.get``
    reads it, but without subscribing to the job's channel: a thousand subscriptions would
    each want Redis again when their handle is garbage-collected, after Redis is stopped.
    """

    def __init__(self, submitter: Submitter, app: Celery, *, poll_s: float = 1.0) -> None:
        super().__init__(name="chaos-watcher", daemon=True)
        self._submitter = submitter
        self._app = app
        self._poll_s = poll_s
        self.done = threading.Event()
        self.seen: dict[str, Seen] = {}
        self.pending = 0
        self.polled = 0
        """How many accepted jobs the last full round looked at."""

    def run(self) -> None:
        while not self.done.is_set():
            accepted = list(self._submitter.accepted)
            pending = self._poll(accepted)
            if pending is not None:
                self.pending, self.polled = pending, len(accepted)
            self.done.wait(self._poll_s)

    def settled(self, accepted: int) -> bool:
        """Whether a full round over all ``accepted`` jobs found none pending."""
        return self.polled == accepted and self.pending == 0

    def _poll(self, accepted: list[Accepted]) -> int | None:
        """Read every handle that became ready; the number still pending, None if Redis
        could not be read this round."""
        pending = 0
        for item in accepted:
            job_id = item.handle.id
            if job_id in self.seen:
                continue
            try:
                ready = item.handle.ready()
                if ready:
                    self.seen[job_id] = _read(self._app.AsyncResult(job_id))
            except (redis.RedisError, OperationalError, OSError):
                return None
            pending += not ready
        return pending


def _read(result: AsyncResult) -> Seen:
    """The result dict of a finished job, else what its handle would have raised."""
    value = result.result
    if result.successful() and isinstance(value, dict):
        return Seen(value)
    return Seen(None, f"{type(value).__name__}: {value}")


@dataclass
class Audit:
    """Counts over every accepted job; ``examples`` keeps a few job ids per problem."""

    completed: int = 0
    failed: int = 0
    fallbacks: int = 0
    duplicated_results: int = 0
    double_charged: int = 0
    caller_errors: Counter[str] = field(default_factory=Counter)
    lost_states: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, problem: str, job_id: str) -> None:
        ids = self.examples.setdefault(problem, [])
        if len(ids) < _EXAMPLES:
            ids.append(job_id)


def audit(
    accepted: list[Accepted],
    seen: dict[str, Seen],
    jobs: JobStore,
    state_of: Callable[[str], str],
) -> Audit:
    """Compare each job's caller-visible result with the recorded result and its charges;
    ``state_of`` gives a job's Celery state (``PENDING``, ``STARTED``...) for lost jobs."""
    report = Audit()
    for item in accepted:
        job_id = item.handle.id
        outcome = seen.get(job_id)
        recorded = jobs.result(job_id)
        if outcome is not None and outcome.result is not None:
            result = Result.model_validate(outcome.result)
            report.completed += 1
            report.failed += not result.ok
            report.fallbacks += bool(result.fallbacks)
            if recorded != result:  # the result the caller saw was replaced later
                report.duplicated_results += 1
                report.note("duplicated_results", job_id)
        else:
            _note_lost(report, item, outcome, state_of(job_id), recorded)
        charges = jobs.charges(job_id)
        cost_usd = recorded.cost_usd if recorded else 0.0
        if len(charges) > 1 or abs(cost_usd - sum(charges.values())) > _COST_TOLERANCE_USD:
            report.double_charged += 1
            report.note("double_charged", job_id)
    return report


def _note_lost(
    report: Audit,
    item: Accepted,
    outcome: Seen | None,
    state: str,
    recorded: Result | None,
) -> None:
    """Why a job has no caller-visible result: the caller's error, its Celery state, and
    whether a result was recorded all the same."""
    job_id = item.handle.id
    report.note("lost", job_id)
    if item.job.get("idempotency_key"):
        report.note("lost_with_idempotency_key", job_id)
    if outcome is not None and outcome.error is not None:
        report.caller_errors[outcome.error.split(":", 1)[0]] += 1
    report.lost_states[f"{state}{' (result recorded)' if recorded else ''}"] += 1
