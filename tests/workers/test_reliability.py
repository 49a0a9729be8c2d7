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
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lanes.bench.chaos import ChaosSettings, chaos_config
from lanes.bench.spend import spend_report
from lanes.broker.embedded import EmbeddedRedis
from lanes.broker.result import Result
from lanes.kernel.config import Config
from lanes.ops.processes import stop_all
from lanes.ops.stack import sim_profiles
from lanes.sim import Fault, Simulator
from lanes.stores.keys import Keys
from lanes.stores.redis.ledger import RedisLedgerSink
from lanes.stores.sql import open_ledger
from lanes.workers.services.ledger_drain import drain_all

from ..conftest import write_config
from .rig import Rig, queues_drained, recorded_of, results_tending, wait_for

EPOCH = datetime.fromtimestamp(0, UTC)


@dataclass
class ServedRig(Rig):
    server: EmbeddedRedis = field(kw_only=True)
    """The embedded Redis the rig's ``url`` points at, to stop and restart."""


@pytest.fixture
def rig(tmp_path: Path, example_config: Config) -> Iterator[ServedRig]:
    server = EmbeddedRedis(tmp_path / "redis", appendfsync="always").start()
    settings = ChaosSettings(latency_s=0.2, call_timeout_s=4.0, concurrency=4)
    config, path = chaos_config(example_config, tmp_path, server.url, settings)
    sim = Simulator(port=0, profiles=sim_profiles(config)).start()
    made = ServedRig(config, path, server.url, sim, tmp_path / "logs", server=server)
    try:
        yield made
    finally:
        stop_all(made.workers)
        sim.stop()
        server.stop()


def test_a_job_whose_worker_is_killed_mid_call_finishes_once_on_another(
    rig: ServedRig,
) -> None:
    rig.slow_down("claude1", 3.0)
    first = rig.start_worker()
    lanes = rig.client()
    handle = lanes.submit({"prompt": "Summarise the incident report", "max_tokens": 40,
                           "instance": "claude1", "model": "claude-haiku-4-5"})  # fmt: skip
    wait_for("the call", lambda: rig.sim.stats()["claude1"]["in_flight"] > 0, 20)
    rig.kill(first)
    rig.start_worker()

    result = handle.get(timeout_s=40)
    recorded, charges = recorded_of(rig, handle.id)
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


def _restore(rig: ServedRig, queue: str, raw: str) -> None:
    """Put ``raw`` back on ``queue`` as kombu's Redis transport restores a message whose ack
    was lost (``Channel._do_restore_message``): flagged as redelivered."""
    message = json.loads(raw)
    message["headers"]["redelivered"] = True
    message["properties"]["delivery_info"]["redelivered"] = True
    rig.redis().rpush(queue, json.dumps(message))


def test_a_redelivered_finished_job_returns_its_result_without_a_call(
    rig: ServedRig,
) -> None:
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
    wait_for("the redelivery to be consumed", lambda: queues_drained(rig), 20)

    recorded, charges = recorded_of(rig, handle.id)
    assert rig.requests("zai") == calls == 1
    raw_result = lanes.app.AsyncResult(handle.id).get(timeout=5)
    assert recorded == first == Result.model_validate(raw_result)
    assert charges == {"0:0": first.cost_usd}


def test_a_stale_message_of_a_job_that_fell_back_makes_no_second_call(
    rig: ServedRig,
) -> None:
    rig.sim.set_fault("zai", Fault(kind="529"))
    rig.slow_down("koala", 3.0)
    lanes = rig.client(wait=False)
    handle = lanes.submit({"prompt": "Tag these tickets", "max_tokens": 40, "instance": "zai",
                           "chain": "cheap"})  # fmt: skip
    raw = rig.redis().lrange(Keys(rig.config.redis_prefix).queue("zai"), 0, -1)[0]
    rig.start_worker()
    wait_for("the fallback", lambda: rig.sim.stats().get("koala", {}).get("in_flight", 0) > 0, 20)
    rig.sim.clear_faults("zai")
    zai_calls = rig.requests("zai")

    _restore(
        rig, Keys(rig.config.redis_prefix).queue("zai"), raw
    )  # the first message again, as if its ack had been lost
    result = handle.get(timeout_s=30)
    wait_for("the stale message to be consumed", lambda: queues_drained(rig), 20)

    recorded, charges = recorded_of(rig, handle.id)
    assert rig.requests("zai") == zai_calls  # zai is healthy now, and still not called
    assert result.instance == "koala" and result.fallbacks
    assert recorded == result
    assert charges == {"1:0": result.cost_usd}


def test_a_redis_restart_during_a_backlog_loses_no_job(
    rig: ServedRig,
) -> None:
    _, handles = rig.backlog("Explain item {} of the changelog", latency_s=1.0, concurrency=2)
    assert rig.redis().llen(Keys(rig.config.redis_prefix).queue("claude1")) > 0, (
        "no backlog left: the test would prove nothing"
    )

    rig.server.restart(down_s=2.0)
    results = results_tending(rig, handles)
    assert [r.status for r in results] == ["ok"] * len(handles)
    for handle, result in zip(handles, results, strict=True):
        recorded, charges = recorded_of(rig, handle.id)
        assert recorded == result
        assert list(charges.values()) == [result.cost_usd]


def _calls_time_out_while_redis_is_down(rig: ServedRig, down_s: float) -> list[Any]:
    """The first four calls hang past the call timeout (4 s); Redis goes down before they time
    out and comes back ``down_s`` later, so each worker thread meets the outage while handling
    an error. Every job's result."""
    rig.sim.set_fault("claude1", Fault(kind="timeout", delay_s=10.0, count=4))
    rig.start_worker(concurrency=4)
    lanes = rig.client()
    handles = [lanes.submit({"prompt": f"Draft release note {i}", "max_tokens": 40,
                             "instance": "claude1"}) for i in range(8)]  # fmt: skip
    wait_for("four hanging calls", lambda: rig.sim.stats()["claude1"]["in_flight"] >= 4, 20)
    time.sleep(2.5)
    rig.server.stop()
    time.sleep(down_s)
    rig.server.start()
    return results_tending(rig, handles)


def test_calls_that_fail_while_redis_is_down_are_tried_again_once_it_is_back(
    rig: ServedRig,
) -> None:
    results = _calls_time_out_while_redis_is_down(rig, down_s=3.0)
    assert [r.status for r in results] == ["ok"] * len(results)
    assert rig.requests("claude1") >= len(results) + 4  # the timed-out calls were made again


def test_a_worker_gives_up_on_a_long_outage_and_leaves_the_job_for_redelivery(
    rig: ServedRig,
) -> None:
    # Threads wait at most 1 s for Redis, far less than it stays away: they leave their
    # messages unacknowledged, and the broker hands them out again once Redis is back.
    rig.config, rig.config_path = write_config(rig.config, rig.log_dir.parent / "short-wait",
                                               retry={"outage_s": 1.0})  # fmt: skip
    results = _calls_time_out_while_redis_is_down(rig, down_s=4.0)
    assert [r.status for r in results] == ["ok"] * len(results)
    logs = "".join(p.read_text() for p in rig.log_dir.glob("*.log"))
    assert "message left for redelivery" in logs
