"""Prometheus metrics and the liveness canary, with a real worker process, the simulator and
a real scrape over HTTP: the numbers move with real jobs, and a lane whose worker stops
consuming is reported in the metrics, ``lanes status`` and the worker's log."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from lanes.broker.app import create_app, wait_for_queues
from lanes.broker.connection import with_db
from lanes.client import Lanes
from lanes.deployment import open_deployment
from lanes.kernel.config import Config
from lanes.ops.exporter import Exporter, prepare_multiproc_dir, start_exporter
from lanes.ops.processes import child_env, spawn, stop_all
from lanes.ops.stack import sim_profiles, worker_command
from lanes.ops.status import lane_status
from lanes.sim import Fault, Simulator

from ..conftest import write_config

METRICS_DB = 10
"""A Redis db of its own: exact counts need a worker that serves nobody else's jobs."""


@dataclass
class Rig:
    config: Config
    config_path: Path
    redis_url: str
    sim: Simulator
    worker: subprocess.Popen[bytes]
    log_file: Path
    multiproc: Path
    exporter: Exporter

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(self.exporter.url, timeout=30) as reply:
            text = reply.read().decode()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


def value(scraped: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:  # fmt: skip
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        v for (n, found), v in scraped.items()
        if n == name and set(labels.items()) <= set(found)
    )  # fmt: skip


@pytest.fixture(scope="module")
def rig(
    redis_url: str, example_config: Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("metrics")
    url = with_db(redis_url, METRICS_DB)
    redis.Redis.from_url(url).flushdb()
    sim = Simulator(port=0, profiles=sim_profiles(example_config)).start()
    config, path = write_config(
        example_config, tmp, redis_url=url, redis_prefix=f"m-{uuid.uuid4().hex[:8]}",
        state_dir=str(tmp / "state"),
        simulator={"mode": "always", "port": sim.port, "latency_s": 0.02, "latency_jitter_s": 0.0},
        retry={"attempts_per_step": 1, "backoff_base_s": 0.05, "backoff_max_s": 0.1},
        liveness={"interval_s": 1.0, "timeout_s": 2.0},
        ledger={"enabled": False},
    )  # fmt: skip
    multiproc = prepare_multiproc_dir(tmp / "metrics")
    env = child_env({"LANES_CONFIG": str(path), "REDIS_URL": url,
                     "PROMETHEUS_MULTIPROC_DIR": str(multiproc)})  # fmt: skip
    log_file = tmp / "worker.log"
    worker = spawn(worker_command(config, config.lanes(), "metrics-test", 8), env=env,
                   log_file=log_file)  # fmt: skip
    exporter = start_exporter(config, url, multiproc=multiproc, port=0)
    app = create_app(config, url)
    try:
        wait_for_queues(app, set(config.lanes()), timeout_s=60)
        yield Rig(config, path, url, sim, worker, log_file, multiproc, exporter)
    finally:
        app.close()
        exporter.close()
        stop_all([worker])
        sim.stop()
        redis.Redis.from_url(url).flushdb()


def _eventually(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not within the time allowed")
        time.sleep(0.2)


def test_counters_and_histograms_move_with_real_jobs(rig: Rig) -> None:
    before = rig.scrape()
    with Lanes(rig.config, rig.redis_url) as lanes:
        results = [
            lanes.run(
                {
                    "prompt": f"one fact {i} {uuid.uuid4().hex}",
                    "max_tokens": 40,
                    "instance": "zai",
                    "vital": False,
                }
            )
            for i in range(3)
        ]
    assert all(r.ok and r.instance == "zai" for r in results)
    model = results[0].model
    # A worker counts a job just after it records its result: the caller may read the result
    # a moment before the count lands in the worker's metric files.
    scrapes = [rig.scrape()]

    def counted() -> bool:
        scrapes.append(rig.scrape())
        labels = {"lane": "zai", "model": model, "status": "ok"}
        jobs = value(scrapes[-1], "lanes_jobs_total", **labels)
        return jobs - value(before, "lanes_jobs_total", **labels) >= 3

    _eventually(counted)
    after = scrapes[-1]

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("lanes_jobs_total", lane="zai", model=model, status="ok") == 3
    assert delta("lanes_spend_usd_total", lane="zai") == pytest.approx(
        sum(r.cost_usd for r in results), rel=1e-6
    )
    assert delta("lanes_provider_latency_seconds_count", lane="zai") == 3
    # nothing stays queued (a liveness canary may pass through the queue for a moment)
    _eventually(lambda: value(rig.scrape(), "lanes_queue_depth", lane="zai") == 0)
    assert {labels for (name, labels) in after if name == "lanes_queue_depth"} == {
        (("lane", lane),) for lane in rig.config.lanes()
    }


def test_a_dispatcher_with_the_multiprocess_dir_counts_its_decisions(rig: Rig) -> None:
    before = rig.scrape()
    env = {**os.environ, "LANES_CONFIG": str(rig.config_path),
           "PROMETHEUS_MULTIPROC_DIR": str(rig.multiproc)}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "lanes", "run", f"hello {uuid.uuid4().hex}", "--instance", "zai",
         "--not-vital", "--max-tokens", "30", "--strategy", "manual"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = rig.scrape()
    moved = value(after, "lanes_routing_decisions_total", strategy="manual", lane="zai") - value(
        before, "lanes_routing_decisions_total", strategy="manual", lane="zai"
    )
    assert moved == 1


def test_cooldowns_and_fallbacks_are_counted(rig: Rig) -> None:
    before = rig.scrape()
    rig.sim.set_fault("zai", Fault(kind="429", retry_after_s=1.0))
    try:
        with Lanes(rig.config, rig.redis_url) as lanes:
            job = {"prompt": f"x {uuid.uuid4().hex}", "max_tokens": 30, "chain": "cheap",
                   "vital": False, "strategy": "fallback_chain"}  # fmt: skip
            result = lanes.run(job)
    finally:
        rig.sim.clear_faults()
    assert result.ok and result.fallbacks and result.fallbacks[0].from_instance == "zai"
    after = rig.scrape()
    assert (
        value(after, "lanes_cooldowns_total", lane="zai")
        - value(before, "lanes_cooldowns_total", lane="zai")
        >= 1
    )
    assert (
        value(after, "lanes_fallbacks_total", lane="zai")
        - value(before, "lanes_fallbacks_total", lane="zai")
        == 1
    )
    assert value(after, "lanes_chain_available_lanes", chain="cheap") >= 1


def test_a_worker_that_stops_consuming_is_reported_within_the_timeout(rig: Rig) -> None:
    deployment = open_deployment(rig.config, rig.redis_url)
    app = deployment.app
    try:
        _eventually(lambda: value(rig.scrape(), "lanes_lane_consuming", lane="koala") == 1)
        # Connected, answering control commands, but no longer taking koala's messages.
        app.control.cancel_consumer("koala", reply=True, timeout=5)
        started = time.monotonic()
        _eventually(lambda: value(rig.scrape(), "lanes_lane_consuming", lane="koala") == 0)
        rows = {row["lane"]: row for row in lane_status(deployment)}
        assert rows["koala"]["consuming"] is False
        assert "not consuming" in rows["koala"]["liveness"]
        assert rows["zai"]["consuming"] is True
        _eventually(lambda: "lane koala: not consuming" in rig.log_file.read_text())
        assert time.monotonic() - started < 60
        app.control.add_consumer("koala", reply=True, timeout=5)
        _eventually(lambda: value(rig.scrape(), "lanes_lane_consuming", lane="koala") == 1)
        _eventually(lambda: "lane koala: consumed again" in rig.log_file.read_text())
    finally:
        app.control.add_consumer("koala", reply=True, timeout=5)
        deployment.close()
