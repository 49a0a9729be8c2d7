"""Prometheus metrics counted where the work happens: the dispatcher's decisions, the
workers' jobs, calls, waits, cooldowns, fallbacks and spend.

A worker process counts in memory unless ``PROMETHEUS_MULTIPROC_DIR`` is set (``lanes up``
and the compose file set it): then every process writes its counts to a file there, named by
host and process id (containers sharing the directory all run as pid 1), and the exporter
(``lanes metrics``, :mod:`lanes.ops.exporter`) adds them up. What is read from Redis at scrape
time (queue depth, cooldowns, liveness, budgets) is the exporter's, not counted here.

Counting is cheap (an mmap write, no I/O, no lock across processes) and never raises into a
job: a metric that cannot be written must not fail the work it describes.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable

from prometheus_client import Counter, Histogram, values

log = logging.getLogger("lanes.ops.exporter")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _process_identifier() -> str:
    return f"{socket.gethostname()}_{os.getpid()}"


if os.environ.get(MULTIPROC_ENV):
    # Set before any metric exists: each is bound to its value class when created.
    values.ValueClass = values.MultiProcessValue(_process_identifier)  # type: ignore[no-untyped-call]

LATENCY_BUCKETS_S = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 900)

JOBS = Counter("lanes_jobs", "Jobs that ended, by the lane and model they ended on.",
               ["lane", "model", "status"])  # fmt: skip
DECISIONS = Counter("lanes_routing_decisions", "Jobs routed, by strategy and first lane.",
                    ["strategy", "lane"])  # fmt: skip
RATE_LIMIT_WAIT = Counter("lanes_rate_limit_wait_seconds",
                          "Seconds jobs waited for a lane's rate limits.", ["lane"])  # fmt: skip
COOLDOWNS = Counter("lanes_cooldowns", "Cooldowns a provider's answer started.", ["lane"])
FALLBACKS = Counter("lanes_fallbacks", "Jobs that left a step for the next one of their chain,"
                    " by the lane and model they left.", ["lane", "model"])  # fmt: skip
SPEND = Counter("lanes_spend_usd", "What the providers billed, in USD.", ["lane", "model"])
LATENCY = Histogram("lanes_provider_latency_seconds", "Provider call latency.",
                    ["lane", "model"], buckets=LATENCY_BUCKETS_S)  # fmt: skip


def _safe(what: str, fn: Callable[..., object], *args: object) -> None:
    try:
        fn(*args)
    except Exception as exc:  # a metric must never fail a job
        log.warning("metric %s not counted: %s", what, exc)


def job_ended(lane: str, model: str, *, ok: bool) -> None:
    """A job's one result (counted once, by the worker that recorded it)."""
    _safe("jobs", JOBS.labels(lane, model, "ok" if ok else "failed").inc)


def billed(lane: str, model: str, cost_usd: float, latency_s: float) -> None:
    """A provider call that answered: what it cost and how long it took (every such call is
    billed, even one whose answer came second)."""
    _safe("spend", SPEND.labels(lane, model).inc, cost_usd)
    _safe("latency", LATENCY.labels(lane, model).observe, latency_s)


def decided(strategy: str, lane: str) -> None:
    _safe("decisions", DECISIONS.labels(strategy, lane).inc)


def waited_for_limits(lane: str, seconds: float) -> None:
    if seconds > 0:
        _safe("rate-limit wait", RATE_LIMIT_WAIT.labels(lane).inc, seconds)


def cooled_down(lane: str) -> None:
    _safe("cooldowns", COOLDOWNS.labels(lane).inc)


def fell_back(lane: str, model: str) -> None:
    _safe("fallbacks", FALLBACKS.labels(lane, model).inc)
