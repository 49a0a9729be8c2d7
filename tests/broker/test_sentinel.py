"""Redis behind Sentinel: a primary, its replica and three sentinels on loopback ports
(:mod:`tests.broker.sentinels`), lanes' clients and Celery's on a ``sentinel://`` URL, and the
primary killed while jobs run."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from lanes.bench.chaos import ChaosSettings, chaos_config
from lanes.broker.embedded import free_port, require_answer
from lanes.broker.result import Result
from lanes.broker.sentinel import parse_sentinel, primary_client
from lanes.client import Lanes
from lanes.deployment import open_deployment
from lanes.kernel.config import Config
from lanes.kernel.errors import ConfigError, InfrastructureError
from lanes.ops.doctor import redis_checks
from lanes.ops.processes import stop_all
from lanes.ops.stack import sim_profiles
from lanes.sim import Simulator
from lanes.stores.keys import Keys

from ..conftest import write_config
from ..workers.rig import Rig, recorded_of, results_tending
from .sentinels import SentinelCluster, sentinel_cluster


def test_a_sentinel_url_names_every_sentinel_the_database_and_the_primarys_password() -> None:
    parsed = parse_sentinel("sentinel://:s%40cret@h1:26379;sentinel://h2;sentinel://h3:26400/2")
    assert parsed.nodes == (("h1", 26379), ("h2", 26379), ("h3", 26400))
    assert parsed.db == 2 and parsed.password == "s@cret"


@pytest.mark.parametrize("url", ["sentinel://h1:26379;redis://h2:6379", "sentinel://h1/x"])
def test_a_malformed_sentinel_url_says_how_to_write_one(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_sentinel(url)
    assert "sentinel://host:26379" in str(caught.value) or "/0" in str(caught.value)


def test_the_config_takes_a_sentinel_url_and_the_primarys_name(
    example_config: Config, tmp_path: Path
) -> None:
    url = "sentinel://127.0.0.1:26379;sentinel://127.0.0.1:26380/0"
    config, _ = write_config(example_config, tmp_path, redis_url=url,
                             redis_sentinel_master="payments")  # fmt: skip
    assert config.redis_url == url and config.redis_sentinel_master == "payments"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelCluster]:
    with sentinel_cluster(tmp_path_factory.mktemp("sentinel")) as made:
        yield made


def test_no_sentinel_naming_the_primary_is_an_error_that_says_so(cluster: SentinelCluster) -> None:
    with pytest.raises(InfrastructureError) as caught:
        require_answer(cluster.url, master="nosuch")
    assert "nosuch" in str(caught.value)


def test_doctor_finds_the_primary_a_quorum_and_a_replica(
    cluster: SentinelCluster, example_config: Config, tmp_path: Path
) -> None:
    dead = f"sentinel://127.0.0.1:{free_port()}"
    url = cluster.url.replace("/0", "") + f";{dead}/0"
    config, _ = write_config(example_config, tmp_path, redis_url=url)
    rows = {row.name: row for row in redis_checks(config, None, timeout_s=2.0)}
    assert rows["redis"].status == "ok"
    primary = rows["sentinel primary"]
    assert (
        primary.status == "warn"
        and f"3 of 4 sentinels name 'mymaster' at 127.0.0.1:{cluster.primary().port}"
        in primary.detail
    )
    assert rows["sentinel quorum"].status == "ok"
    assert rows["sentinel replicas"].status == "ok"


def test_doctor_fails_a_primary_no_sentinel_knows(
    cluster: SentinelCluster, example_config: Config, tmp_path: Path
) -> None:
    config, _ = write_config(example_config, tmp_path, redis_url=cluster.url,
                             redis_sentinel_master="nosuch")  # fmt: skip
    rows = {row.name: row for row in redis_checks(config, None, timeout_s=2.0)}
    assert rows["redis"].status == "fail" and "nosuch" in rows["redis"].detail


def test_a_submit_returns_once_a_replica_holds_the_job_and_warns_when_none_answers(
    cluster: SentinelCluster, example_config: Config, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    config, _ = write_config(example_config, tmp_path, redis_url=cluster.url, redis_wait_ms=400,
                             redis_prefix="replicated")  # fmt: skip
    primary = cluster.primary()
    replica = next(server for server in cluster.servers if server is not primary)
    on_replica = redis.Redis(host="127.0.0.1", port=replica.port, decode_responses=True)
    job = {"prompt": "Summarise the release", "max_tokens": 40, "instance": "claude1"}
    with Lanes(config, cluster.url) as lanes:
        held = lanes.submit(job)
        assert on_replica.hexists(Keys("replicated").pending(), held.id)
        assert replica.pid is not None
        os.kill(replica.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            lanes.submit({**job, "prompt": "Summarise the next release"})
            waited_s = time.monotonic() - started
        finally:
            os.kill(replica.pid, signal.SIGCONT)
    assert waited_s >= 0.4
    assert "0 of 1 replicas acknowledged within 400 ms" in caplog.text


def test_a_result_wakes_its_waiters_only_once_recorded_and_again_on_a_redelivery(
    cluster: SentinelCluster, example_config: Config, tmp_path: Path
) -> None:
    config, _ = write_config(example_config, tmp_path, redis_url=cluster.url,
                             redis_prefix="announced")  # fmt: skip
    with open_deployment(config) as deployment:
        jobs = deployment.stores.jobs
        channel = deployment.keys.result("job-1")
        listener = deployment.redis.pubsub(ignore_subscribe_messages=True)
        listener.subscribe(channel)
        listener.get_message(timeout=1.0)  # the subscription's confirmation (not shown)
        result = Result(job_id="job-1", status="ok", instance="claude1", model="m", step=0,
                        attempt=0, text="done")  # fmt: skip
        assert jobs.record(result) == result
        heard = [listener.get_message(timeout=2.0), listener.get_message(timeout=0.2)]
        jobs.announce([result])  # a redelivery of the finished job wakes the waiters again
        again = listener.get_message(timeout=2.0)
        listener.close()
    assert heard[0] is not None and heard[1] is None  # once, after the replica held it
    assert again is not None
    assert json.loads(again["data"])["result"] == json.loads(heard[0]["data"])["result"]


@pytest.fixture
def rig(tmp_path: Path, example_config: Config, cluster: SentinelCluster) -> Iterator[Rig]:
    settings = ChaosSettings(latency_s=0.2, call_timeout_s=4.0, concurrency=4)
    config, path = chaos_config(example_config, tmp_path, cluster.url, settings)
    sim = Simulator(port=0, profiles=sim_profiles(config)).start()
    made = Rig(config, path, cluster.url, sim, tmp_path / "logs")
    try:
        yield made
    finally:
        stop_all(made.workers)
        sim.stop()


def test_jobs_finish_once_through_a_failover_after_the_primary_dies(
    rig: Rig, cluster: SentinelCluster
) -> None:
    lanes, handles = rig.backlog("Summarise incident {}", latency_s=0.5, concurrency=4)
    old = cluster.primary()
    old.kill()
    started = time.monotonic()
    new = cluster.failed_over(old)
    later = [lanes.submit({"prompt": f"Summarise follow-up {i}", "max_tokens": 40,
                           "instance": "claude1"}) for i in range(6)]  # fmt: skip
    results = results_tending(rig, handles + later, timeout_s=90)

    assert new.port != old.port and time.monotonic() - started < 30
    assert [r.status for r in results] == ["ok"] * len(results)  # lost: 0
    for handle, result in zip(handles + later, results, strict=True):
        recorded, charges = recorded_of(rig, handle.id)
        assert recorded == result  # answered once: the result the caller saw is the one kept
        assert list(charges.values()) == [result.cost_usd]  # charged once

    client = primary_client(cluster.url, rig.config.redis_sentinel_master)
    assert client.info("replication")["role"] == "master"
    assert open_deployment(rig.config, cluster.url).redis.ping()
