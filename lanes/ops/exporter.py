"""The Prometheus exporter: what the workers counted, and what only Redis knows.

``lanes up`` serves it (``metrics.host``:``metrics.port``), ``lanes metrics`` runs it on its
own (the compose file's ``metrics`` service). Counters and histograms come from the files the
worker processes write in the multiprocess directory (:mod:`lanes.broker.counters`); the gauges are
read from Redis at each scrape:

- ``lanes_queue_depth{lane}``: messages waiting on the lane's queue (Flower has no such metric);
- ``lanes_backlog{lane}``: unfinished jobs whose next message is on the lane, wherever they
  wait (queued, or held by a worker waiting for capacity);
- ``lanes_lane_cooling_down{lane}``: 1 while a 429 or an outage cools the lane down;
- ``lanes_chain_available_lanes{chain}``: lanes of a fallback chain neither cooling down nor
  disabled (0: every lane of the chain is cooling down);
- ``lanes_lane_consuming{lane}``: 1 when the liveness canary says the lane is consumed, 0 when
  it is stuck or no worker serves it (:mod:`lanes.workers.services.liveness`);
- ``lanes_lane_workers{lane}``: workers consuming the lane (asked at most every 10 s);
- ``lanes_budget_used_ratio{budget}``: (spent + in flight) / limit of each windowed budget;
- ``lanes_ledger_backlog``, ``lanes_ledger_drainers``, ``lanes_ledger_drainer_restarts_total``:
  ledger events waiting in Redis, drainers running, drainers replaced after they died
  (:mod:`lanes.workers.services.ledger_health`).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from lanes.deployment import Deployment, open_deployment
from lanes.kernel.config import BudgetPeriod, Config
from lanes.kernel.errors import InfrastructureError
from lanes.layers.budgets.gate import valid_overrides
from lanes.ops.status import consumers
from lanes.router.budgets import budget_limits, window_hold
from lanes.workers.services.ledger_health import ledger_health, stale_after_s
from lanes.workers.services.liveness import liveness

log = logging.getLogger("lanes.ops.exporter")

WORKERS_TTL_S = 10.0
"""Asking the workers takes up to a second: their answer is reused for this long."""


def multiproc_dir(config: Config) -> Path:
    """Where worker processes write their metrics (``PROMETHEUS_MULTIPROC_DIR``)."""
    return Path(config.metrics.multiproc_dir or Path(config.state_dir) / "metrics").resolve()


def prepare_multiproc_dir(path: Path) -> Path:
    """``path``, created and emptied: files of processes from an earlier run would count
    their old totals again."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


class RedisCollector(Collector):
    """The gauges read from Redis (and the workers) at each scrape."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.config = deployment.config
        self.client = deployment.redis
        self.keys = deployment.keys
        self._workers: tuple[float, dict[str, list[str]]] = (0.0, {})
        self._lock = threading.Lock()

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        try:
            yield from self._lanes()
            yield from self._budgets()
            yield from self._ledger()
        except (InfrastructureError, redis.RedisError, OSError) as exc:
            log.warning("metrics from Redis not read: %s", exc)

    def _lanes(self) -> Iterator[GaugeMetricFamily]:
        lanes = self.config.lanes()
        states = self.deployment.stores.lane_state.statuses(lanes)
        alive = liveness(self.client, self.keys, lanes, self.config.liveness.timeout_s)
        workers = self._consumers()
        depth = _gauge("lanes_queue_depth", "Messages waiting on the lane's queue.", "lane")
        backlog = _gauge("lanes_backlog", "Unfinished jobs on the lane: queued or waiting in a"
                         " worker.", "lane")  # fmt: skip
        cooling = _gauge("lanes_lane_cooling_down", "1 while the lane cools down.", "lane")
        consuming = _gauge("lanes_lane_consuming", "1 when the lane's canary goes through.",
                           "lane")  # fmt: skip
        serving = _gauge("lanes_lane_workers", "Workers consuming the lane.", "lane")
        depths = self.deployment.queue_depths(lanes)
        for lane, waiting in depths.items():
            depth.add_metric([lane], float(waiting))
            backlog.add_metric([lane], float(states[lane].backlog))
            cooling.add_metric([lane], 1.0 if states[lane].cooldown_s > 0 else 0.0)
            serving.add_metric([lane], float(len(workers.get(lane, []))))
            up = bool(alive[lane].consuming) and bool(workers.get(lane))
            consuming.add_metric([lane], 1.0 if up else 0.0)
        yield from (depth, backlog, cooling, consuming, serving)
        yield self._chains(states)

    def _chains(self, states: dict[str, Any]) -> GaugeMetricFamily:
        doc = "Lanes of a fallback chain not cooling down nor disabled."
        chains = _gauge("lanes_chain_available_lanes", doc, "chain")
        for name, steps in self.config.fallback_chains.items():
            lanes = {m for step in steps for m in self.config.members(step.instance)}
            usable = [
                lane for lane in lanes
                if self.config.instances[lane].enabled
                and states[lane].cooldown_s <= 0 and not states[lane].disabled_reason
            ]  # fmt: skip
            chains.add_metric([name], float(len(usable)))
        return chains

    def _budgets(self) -> Iterator[GaugeMetricFamily]:
        store = self.deployment.stores.budget
        now = datetime.now(UTC)
        holds = [
            window_hold(limit, self.config.budgets.timezone, now)
            for limit in budget_limits(self.config.budgets, valid_overrides(store.limits()))
            if limit.period is not BudgetPeriod.PER_REQUEST
        ]
        used = _gauge("lanes_budget_used_ratio", "(spent + in flight) / limit.", "budget")
        usage = store.usage(holds) if holds else {}
        for hold in holds:
            found = usage.get(hold.counter)
            if found is not None:
                used.add_metric([hold.budget_id], found.fraction)
        yield used

    def _ledger(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        if not self.config.ledger.enabled:
            return
        stale_s = stale_after_s(self.config.ledger.flush_interval_s)
        health = ledger_health(self.client, self.keys, stale_s)
        yield GaugeMetricFamily("lanes_ledger_backlog", "Ledger events waiting in Redis.",
                                value=health.backlog)  # fmt: skip
        yield GaugeMetricFamily("lanes_ledger_drainers", "Ledger drainers running.",
                                value=len(health.drainers))  # fmt: skip
        yield CounterMetricFamily("lanes_ledger_drainer_restarts",
                                  "Ledger drainers replaced after they died.",
                                  value=health.restarts)  # fmt: skip

    def _consumers(self) -> dict[str, list[str]]:
        with self._lock:
            at, found = self._workers
            if time.monotonic() - at > WORKERS_TTL_S:
                found = consumers(self.deployment.app)
                self._workers = (time.monotonic(), found)
            return found


def _gauge(name: str, doc: str, label: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=[label])


def registry(config: Config, redis_url: str, multiproc: Path | None) -> CollectorRegistry:
    """The workers' counts (if ``multiproc``) and the Redis gauges in one registry."""
    found = CollectorRegistry()
    if multiproc is not None:
        MultiProcessCollector(found, path=str(multiproc))  # type: ignore[no-untyped-call]
    found.register(RedisCollector(open_deployment(config, redis_url, timeout_s=5)))
    return found


@dataclass
class Exporter:
    """A running exporter; ``close()`` stops it."""

    url: str
    _server: Any
    _thread: threading.Thread

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_exporter(
    config: Config,
    redis_url: str,
    *,
    multiproc: Path | None,
    host: str | None = None,
    port: int | None = None,
) -> Exporter:
    """Serve ``/metrics`` from a background thread (port 0: any free port)."""
    addr = host or config.metrics.host
    wanted = config.metrics.port if port is None else port
    try:
        found = registry(config, redis_url, multiproc)
        server, thread = start_http_server(wanted, addr=addr, registry=found)
    except OSError as exc:
        raise InfrastructureError(
            f"cannot serve metrics on {addr}:{wanted}: {exc.strerror}; set metrics.port"
            " (or LANES_METRICS__PORT) to a free port"
        ) from exc
    url = f"http://{addr}:{server.server_port}/metrics"
    return Exporter(url, server, thread)
