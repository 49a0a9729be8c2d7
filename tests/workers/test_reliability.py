"""Faults with real processes: a worker killed mid-call, redeliveries, a Redis restart.

Each test runs its own embedded Redis (AOF, ``appendfsync always``), an in-process simulator
and worker processes started like ``lanes worker``. The config refuses a visibility timeout
under 60 s, so the workers here lower the broker's (and sweep for expired messages every
second) before they start: a message held by a killed worker comes back within seconds.

Workers may exit by themselves when Redis goes away while they hold unacknowledged messages
(kombu 5.7 fails while closing the lost connection); like a supervisor, :meth:`Rig.tend`
starts a replacement for any worker that exited.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from lanes.bench.chaos import ChaosSettings, chaos_config
from lanes.bench.spend import spend_report
from lanes.broker.app import wait_for_queues
from lanes.broker.embedded import EmbeddedRedis
from lanes.broker.handle import JobHandle
from lanes.broker.result import Result
from lanes.client import Lanes
from lanes.kernel.config import Config
from lanes.ops.processes import child_env, spawn, stop_all
from lanes.ops.stack import sim_profiles
from lanes.sim import Fault, Simulator
from lanes.stores.keys import Keys
from lanes.stores.redis.jobs import RedisJobStore
from lanes.stores.redis.ledger import RedisLedgerSink
from lanes.stores.sql import open_ledger
from lanes.workers.services.ledger_drain import drain_all

from ..conftest import write_config

EPOCH = datetime.fromtimestamp(0, UTC)

VISIBILITY_S = 5
"""Broker visibility timeout of the test workers."""

_WORKER = """
import sys
from lanes.workers.celery_app import app
app.conf.broker_transport_options = {
    **app.conf.broker_transport_options,
    "visibility_timeout": int(sys.argv[1]),
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
app.worker_main(sys.argv[2:])
"""


@dataclass
class Rig:
    config: Config
    config_path: Path
    server: EmbeddedRedis
    sim: Simulator
    log_dir: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    live: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self, concurrency: int = 4) -> subprocess.Popen[bytes]:
        name = f"w{len(self.workers)}"
        cmd = [sys.executable, "-c", _WORKER, str(VISIBILITY_S), "worker",
               "-Q", ",".join(self.config.lanes()), "-P", "threads", "-c", str(concurrency),
               "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
               "--loglevel=INFO"]  # fmt: skip
        env = child_env({"REDIS_URL": self.server.url, "LANES_CONFIG": str(self.config_path),
                         "LANES_SIMULATOR__PORT": str(self.sim.port)})  # fmt: skip
        proc = spawn(cmd, env=env, log_file=self.log_dir / f"{name}.log")
        self.workers.append(proc)
        self.live.append(proc)
        return proc

    def tend(self) -> int:
        """Replace every worker that exited; how many were replaced."""
        exited = [proc for proc in self.live if proc.poll() is not None]
        for proc in exited:
            self.live.remove(proc)
            self.start_worker()
        return len(exited)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.kill()  # SIGKILL: no warm shutdown, no restore of its messages
        proc.wait(timeout=10)
        self.live.remove(proc)

    def client(self, *, wait: bool = True) -> Lanes:
        """A client; with ``wait``, once every lane has a worker."""
        lanes = Lanes(self.config, self.server.url)
        if wait:
            wait_for_queues(lanes.app, set(self.config.lanes()), check=self._check_alive)
        return lanes

    def _check_alive(self) -> None:
        assert all(p.poll() is None for p in self.live), f"a worker died; see {self.log_dir}"

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.server.url, decode_responses=True)

    def requests(self, instance: str) -> int:
        return self.sim.stats().get(instance, {}).get("requests", 0)

    def slow_down(self, instance: str, latency_s: float) -> None:
        profile = sim_profiles(self.config)[instance]
        self.sim.set_profile(instance, profile.model_copy(update={"latency_s": latency_s}))


@pytest.fixture
def rig(tmp_path: Path, example_config: Config) -> Iterator[Rig]:
    server = EmbeddedRedis(tmp_path / "redis", appendfsync="always").start()
    settings = ChaosSettings(latency_s=0.2, call_timeout_s=4.0, concurrency=4)
    config, path = chaos_config(example_config, tmp_path, server.url, settings)
    sim = Simulator(port=0, profiles=sim_profiles(config)).start()
    made = Rig(config, path, server, sim, tmp_path / "logs")
    try:
        yield made
    finally:
        stop_all(made.workers)
        sim.stop()
        server.stop()


def _wait_for(what: str, check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _recorded(rig: Rig, job_id: str) -> tuple[Result | None, dict[str, float]]:
    """The job's one recorded result and its charges by ``step:attempt``."""
    jobs = RedisJobStore(rig.redis(), Keys(rig.config.redis_prefix), rig.config.result_ttl_s)
    return jobs.result(job_id), jobs.charges(job_id)


def _results_tending(rig: Rig, handles: list[JobHandle], timeout_s: float = 45) -> list[Any]:
    """Every job's result, replacing workers that exit (as a supervisor would) meanwhile."""
    deadline = time.monotonic() + timeout_s
    while not all(h.ready() for h in handles) and time.monotonic() < deadline:
        rig.tend()
        time.sleep(0.2)
    return [h.get(timeout_s=1) for h in handles]


def _queues_drained(rig: Rig) -> bool:
    """No message waiting in any lane queue and none held unacknowledged."""
    client = rig.redis()
    keys = Keys(rig.config.redis_prefix)
    waiting = sum(int(client.llen(keys.queue(lane))) for lane in rig.config.lanes())
    return waiting == 0 and int(client.hlen(keys.unacked())) == 0


def test_a_job_whose_worker_is_killed_mid_call_finishes_once_on_another(rig: Rig) -> None:
    rig.slow_down("claude1", 3.0)
    first = rig.start_worker()
    lanes = rig.client()
    handle = lanes.submit({"prompt": "Summarise the incident report", "max_tokens": 40,
                           "instance": "claude1", "model": "claude-haiku-4-5"})  # fmt: skip
    _wait_for("the call", lambda: rig.sim.stats()["claude1"]["in_flight"] > 0, 20)
    rig.kill(first)
    rig.start_worker()

    result = handle.get(timeout_s=40)
    recorded, charges = _recorded(rig, handle.id)
    assert result.status == "ok"
    assert recorded == result
    assert charges == {"0:0": result.cost_usd}
    assert rig.requests("claude1") == 2  # the interrupted call and the one that finished

    # Both calls are in the books: the killed one at its reservation, the other at its cost.
    ledger = open_ledger(rig.config)
    try:
        drain_all(RedisLedgerSink(rig.redis(), Keys(rig.config.redis_prefix)), ledger)
        unsettled = ledger.unsettled_since(EPOCH)
        spent = ledger.spend_since(EPOCH)
        money = spend_report(rig.config, ledger, rig.sim.stats())
    finally:
        ledger.close()
    assert unsettled.calls == 1 and unsettled.reserved_usd > result.cost_usd
    assert spent == pytest.approx(unsettled.reserved_usd + result.cost_usd)
    assert money["spend_within_reservations"], money


def _restore(rig: Rig, queue: str, raw: str) -> None:
    """Put ``raw`` back on ``queue`` as kombu's Redis transport restores a message whose ack
    was lost (``Channel._do_restore_message``): flagged as redelivered."""
    message = json.loads(raw)
    message["headers"]["redelivered"] = True
    message["properties"]["delivery_info"]["redelivered"] = True
    rig.redis().rpush(queue, json.dumps(message))


def test_a_redelivered_finished_job_returns_its_result_without_a_call(rig: Rig) -> None:
    lanes = rig.client(wait=False)
    job = {"prompt": "List three uses of a bloom filter", "max_tokens": 40, "instance": "zai"}
    handle = lanes.submit(job)
    raw = rig.redis().lrange(Keys(rig.config.redis_prefix).queue("zai"), 0, -1)[
        0
    ]  # the message, before any worker takes it
    rig.start_worker()
    first = handle.get(timeout_s=30)
    calls = rig.requests("zai")

    _restore(
        rig, Keys(rig.config.redis_prefix).queue("zai"), raw
    )  # the very message again, as the broker redelivers it
    _wait_for("the redelivery to be consumed", lambda: _queues_drained(rig), 20)

    recorded, charges = _recorded(rig, handle.id)
    assert rig.requests("zai") == calls == 1
    raw_result = lanes.app.AsyncResult(handle.id).get(timeout=5)
    assert recorded == first == Result.model_validate(raw_result)
    assert charges == {"0:0": first.cost_usd}


def test_a_stale_message_of_a_job_that_fell_back_makes_no_second_call(rig: Rig) -> None:
    rig.sim.set_fault("zai", Fault(kind="529"))
    rig.slow_down("koala", 3.0)
    lanes = rig.client(wait=False)
    handle = lanes.submit({"prompt": "Tag these tickets", "max_tokens": 40, "instance": "zai",
                           "chain": "cheap"})  # fmt: skip
    raw = rig.redis().lrange(Keys(rig.config.redis_prefix).queue("zai"), 0, -1)[0]
    rig.start_worker()
    _wait_for("the fallback", lambda: rig.sim.stats().get("koala", {}).get("in_flight", 0) > 0, 20)
    rig.sim.clear_faults("zai")
    zai_calls = rig.requests("zai")

    _restore(
        rig, Keys(rig.config.redis_prefix).queue("zai"), raw
    )  # the first message again, as if its ack had been lost
    result = handle.get(timeout_s=30)
    _wait_for("the stale message to be consumed", lambda: _queues_drained(rig), 20)

    recorded, charges = _recorded(rig, handle.id)
    assert rig.requests("zai") == zai_calls  # zai is healthy now, and still not called
    assert result.instance == "koala" and result.fallbacks
    assert recorded == result
    assert charges == {"1:0": result.cost_usd}


def test_a_redis_restart_during_a_backlog_loses_no_job(rig: Rig) -> None:
    rig.slow_down("claude1", 1.0)
    rig.start_worker(concurrency=2)
    rig.start_worker(concurrency=2)
    lanes = rig.client()
    handles = [lanes.submit({"prompt": f"Explain item {i} of the changelog", "max_tokens": 40,
                             "instance": "claude1"}) for i in range(24)]  # fmt: skip
    _wait_for("a backlog in progress", lambda: rig.requests("claude1") >= 4, 20)
    assert rig.redis().llen(Keys(rig.config.redis_prefix).queue("claude1")) > 0, (
        "no backlog left: the test would prove nothing"
    )

    rig.server.restart(down_s=2.0)
    results = _results_tending(rig, handles)
    assert [r.status for r in results] == ["ok"] * len(handles)
    for handle, result in zip(handles, results, strict=True):
        recorded, charges = _recorded(rig, handle.id)
        assert recorded == result
        assert list(charges.values()) == [result.cost_usd]


def _calls_time_out_while_redis_is_down(rig: Rig, down_s: float) -> list[Any]:
    """The first four calls hang past the call timeout (4 s); Redis goes down before they time
    out and comes back ``down_s`` later, so each worker thread meets the outage while handling
    an error. Every job's result."""
    rig.sim.set_fault("claude1", Fault(kind="timeout", delay_s=10.0, count=4))
    rig.start_worker(concurrency=4)
    lanes = rig.client()
    handles = [lanes.submit({"prompt": f"Draft release note {i}", "max_tokens": 40,
                             "instance": "claude1"}) for i in range(8)]  # fmt: skip
    _wait_for("four hanging calls", lambda: rig.sim.stats()["claude1"]["in_flight"] >= 4, 20)
    time.sleep(2.5)
    rig.server.stop()
    time.sleep(down_s)
    rig.server.start()
    return _results_tending(rig, handles)


def test_calls_that_fail_while_redis_is_down_are_tried_again_once_it_is_back(rig: Rig) -> None:
    results = _calls_time_out_while_redis_is_down(rig, down_s=3.0)
    assert [r.status for r in results] == ["ok"] * len(results)
    assert rig.requests("claude1") >= len(results) + 4  # the timed-out calls were made again


def test_a_worker_gives_up_on_a_long_outage_and_leaves_the_job_for_redelivery(rig: Rig) -> None:
    # Threads wait at most 1 s for Redis, far less than it stays away: they leave their
    # messages unacknowledged, and the broker hands them out again once Redis is back.
    rig.config, rig.config_path = write_config(rig.config, rig.log_dir.parent / "short-wait",
                                               retry={"outage_s": 1.0})  # fmt: skip
    results = _calls_time_out_while_redis_is_down(rig, down_s=4.0)
    assert [r.status for r in results] == ["ok"] * len(results)
    logs = "".join(p.read_text() for p in rig.log_dir.glob("*.log"))
    assert "message left for redelivery" in logs
