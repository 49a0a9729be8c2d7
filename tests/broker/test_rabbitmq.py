"""The lanes' queues on RabbitMQ quorum queues (:mod:`lanes.broker.amqp`), Redis for state: a
three-node cluster on loopback ports (:mod:`lanes.bench.rabbits`), and the node that leads a
lane's queue killed while jobs run."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lanes.bench.chaos import ChaosSettings, chaos_config
from lanes.bench.rabbits import MISSING, RabbitCluster, rabbit_cluster, rabbitmq_installed
from lanes.broker.amqp import DEAD_LETTERS, batch_queue
from lanes.broker.app import celery_conf, wait_for_queues
from lanes.broker.connection import refuse_open_redis
from lanes.deployment import open_deployment
from lanes.kernel.config import Config
from lanes.kernel.errors import ConfigError
from lanes.ops.doctor_broker import broker_checks, queues_verdict
from lanes.ops.processes import stop_all
from lanes.ops.stack import sim_profiles
from lanes.sim import Simulator

from ..conftest import missing_tool, write_config
from ..workers.rig import Rig, recorded_of, results_tending, wait_for


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "amqp://h1//;http://h2"])
def test_a_broker_url_that_is_not_rabbitmq_says_how_to_write_one(
    url: str, example_config: Config, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        write_config(example_config, tmp_path, broker={"url": url})
    assert "amqp://user:password@host:5672/vhost" in str(caught.value)


def test_each_lane_has_a_quorum_queue_and_a_batch_queue_with_a_delivery_limit(
    example_config: Config, tmp_path: Path
) -> None:
    config, _ = write_config(example_config, tmp_path,
                             broker={"url": "amqp://u:p@h1:5672//;amqp://u:p@h2:5672//",
                                     "delivery_limit": 4})  # fmt: skip
    conf = celery_conf(config, "redis://127.0.0.1:6379/0")
    queues = {queue.name: queue for queue in conf["task_queues"]}  # type: ignore[attr-defined]
    assert set(queues) == {name for lane in config.lanes()
                           for name in (lane, batch_queue(lane))}  # fmt: skip
    arguments = queues["claude1.batch"].queue_arguments
    assert arguments["x-queue-type"] == "quorum" and arguments["x-delivery-limit"] == 8
    assert arguments["x-dead-letter-routing-key"] == DEAD_LETTERS
    assert queues["claude1"].exchange.type == "topic"  # native delayed delivery needs it
    assert conf["broker_url"] == config.broker.url
    assert conf["result_backend"] == "redis://127.0.0.1:6379/0"  # state stays on Redis
    assert conf["broker_transport_options"] == {"confirm_publish": True}


@pytest.mark.parametrize(
    ("url", "refused"),
    [("amqp://guest:guest@r1:5672//", True), ("amqp://r1:5672//", True),
     ("amqp://lanes:s3cret@r1:5672//;amqp://r2:5672//", True),
     ("amqp://lanes:s3cret@r1:5672//;amqp://lanes:s3cret@r2:5672//", False)],
)  # fmt: skip
def test_production_refuses_a_rabbitmq_node_reached_without_a_password_of_its_own(
    url: str, refused: bool, example_config: Config, tmp_path: Path
) -> None:
    config, _ = write_config(example_config, tmp_path, production=True, broker={"url": url})
    redis_url = "redis://:pw@127.0.0.1:6379/0"
    if not refused:
        refuse_open_redis(config, redis_url)
        return
    with pytest.raises(ConfigError) as caught:
        refuse_open_redis(config, redis_url)
    assert "RabbitMQ" in str(caught.value) and "s3cret" not in str(caught.value)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RabbitCluster]:
    if not rabbitmq_installed():
        missing_tool(MISSING)
    with rabbit_cluster() as made:
        yield made


@pytest.fixture
def rig(tmp_path: Path, example_config: Config, cluster: RabbitCluster,
        isolated_redis_url: str) -> Iterator[Rig]:  # fmt: skip
    settings = ChaosSettings(latency_s=0.2, call_timeout_s=4.0, concurrency=4)
    config, path = chaos_config(example_config, tmp_path, isolated_redis_url, settings,
                                broker_url=cluster.url)  # fmt: skip
    sim = Simulator(port=0, profiles=sim_profiles(config)).start()
    made = Rig(config, path, isolated_redis_url, sim, tmp_path / "logs")
    try:
        yield made
    finally:
        stop_all(made.workers)
        sim.stop()


def test_jobs_wait_on_the_cluster_until_a_worker_takes_them_and_status_counts_them(
    rig: Rig,
) -> None:
    lanes = rig.client(wait=False)
    interactive = [lanes.submit({"prompt": f"Summarise note {i}", "max_tokens": 40,
                                 "instance": "claude2"}) for i in range(3)]  # fmt: skip
    batch = lanes.submit({"prompt": "Summarise the archive", "max_tokens": 40,
                          "instance": "claude2", "priority": "batch"})  # fmt: skip
    with open_deployment(rig.config, rig.url) as deployment:
        assert deployment.queue_depths(["claude2"]) == {"claude2": 4}
    rig.start_worker()
    results = results_tending(rig, [*interactive, batch], timeout_s=60)
    assert [r.status for r in results] == ["ok"] * 4


def test_jobs_finish_once_when_the_node_leading_a_lanes_queue_dies(
    rig: Rig, cluster: RabbitCluster
) -> None:
    lanes, handles = rig.backlog("Summarise incident {}", latency_s=0.5, concurrency=4)
    leader = cluster.leader("claude1")
    leader.kill()
    started = time.monotonic()
    later = [lanes.submit({"prompt": f"Summarise follow-up {i}", "max_tokens": 40,
                           "instance": "claude1"}) for i in range(6)]  # fmt: skip
    results = results_tending(rig, handles + later, timeout_s=120)

    assert [r.status for r in results] == ["ok"] * len(results)  # lost: 0
    for handle, result in zip(handles + later, results, strict=True):
        recorded, charges = recorded_of(rig, handle.id)
        assert recorded == result  # answered once: the result the caller saw is the one kept
        assert list(charges.values()) == [result.cost_usd]  # charged once
    survivor = next(node for node in cluster.nodes if node is not leader)
    assert cluster.leader("claude1") is not leader
    assert leader.name in cluster.members("claude1", survivor)  # still a member, now away
    assert time.monotonic() - started < 120


def test_a_job_that_waits_comes_back_through_native_delayed_delivery(rig: Rig) -> None:
    rig.start_worker()
    lanes = rig.client()
    with open_deployment(rig.config, rig.url) as deployment:
        deployment.stores.lane_state.cool_down("claude3", 2.0, "a test's cooldown")
    handle = lanes.submit({"prompt": "Summarise the outage", "max_tokens": 40,
                           "instance": "claude3"})  # fmt: skip
    result = results_tending(rig, [handle], timeout_s=60)[0]
    assert result.status == "ok" and result.waited_s >= 1.0


def test_doctor_counts_the_nodes_that_answer(rig: Rig, cluster: RabbitCluster) -> None:
    rows = {row.name: row for row in broker_checks(rig.config, timeout_s=5.0)}
    up = [node for node in cluster.nodes if not node.killed]
    expected = "ok" if len(up) == len(cluster.nodes) else "warn"
    assert rows["broker"].status == expected, rows
    assert f"{len(up)} of {len(cluster.nodes)} RabbitMQ nodes answer" in rows["broker"].detail
    assert rows["broker queues"].status != "fail" and "waiting" in rows["broker queues"].detail


def test_doctor_names_lanes_not_declared_or_not_consumed_and_dead_letters(
    example_config: Config,
) -> None:
    found: dict[str, tuple[int, int] | None] = {
        name: (2, 1) for lane in example_config.lanes() for name in (lane, batch_queue(lane))
    }
    found |= {"zai": None, "koala": (5, 0), DEAD_LETTERS: (3, 0)}
    row = queues_verdict(example_config, found)
    assert row.status == "warn"
    assert "not declared yet: zai" in row.detail and "no consumer: zai, koala" in row.detail
    assert f"3 messages in {DEAD_LETTERS}" in row.detail
    healthy = queues_verdict(example_config, {name: (0, 1) for name in found})
    assert healthy.status == "ok"


def test_interactive_jobs_overtake_a_batch_backlog(rig: Rig) -> None:
    rig.slow_down("claude2", 0.6)
    rig.start_worker(concurrency=2)
    lanes = rig.client()
    job = {"max_tokens": 40, "instance": "claude2", "priority": "batch"}
    batch = [lanes.submit({**job, "prompt": f"Summarise archive {i}"}) for i in range(10)]
    wait_for("batch calls in flight", lambda: rig.requests("claude2") >= 2, 20)
    interactive = [lanes.submit({"prompt": f"Summarise ticket {i}", "max_tokens": 40,
                                 "instance": "claude2"}) for i in range(3)]  # fmt: skip
    results = results_tending(rig, batch + interactive, timeout_s=90)
    assert [r.status for r in results] == ["ok"] * len(results)
    last_interactive = max(r.finished_at for r in results[len(batch) :])
    after = [r for r in results[: len(batch)] if r.finished_at > last_interactive]
    assert len(after) >= 3  # the batch backlog waited for the interactive jobs


def test_a_worker_of_one_lane_binds_every_lanes_queue_for_delayed_messages(
    tmp_path: Path, example_config: Config, cluster: RabbitCluster, isolated_redis_url: str
) -> None:
    vhost = f"one-{uuid.uuid4().hex[:8]}"
    first = cluster.nodes[0] if not cluster.nodes[0].killed else cluster.nodes[1]
    first.ctl("add_vhost", vhost)
    first.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    url = ";".join(node.url.removesuffix("//") + f"/{vhost}" for node in cluster.nodes)
    settings = ChaosSettings(latency_s=0.2, call_timeout_s=4.0, concurrency=4)
    config, path = chaos_config(example_config, tmp_path, isolated_redis_url, settings,
                                broker_url=url)  # fmt: skip
    sim = Simulator(port=0, profiles=sim_profiles(config)).start()
    rig = Rig(config, path, isolated_redis_url, sim, tmp_path / "logs")
    try:
        rig.start_worker(lanes=["claude1"])
        with rig.client(wait=False) as lanes:
            wait_for_queues(lanes.app, {"claude1"})
        rows = json.loads(first.ctl("list_bindings", "-p", vhost, "source_name",
                                    "destination_name", "routing_key", "--formatter", "json",
                                    "-q"))  # fmt: skip
    finally:
        stop_all(rig.workers)
        sim.stop()
    # A delayed message comes back through the lanes exchange with the routing key "#.<queue>"
    bound = {row["destination_name"] for row in rows
             if row["source_name"] == "lanes" and row["routing_key"].startswith("#.")}  # fmt: skip
    assert {name for lane in config.lanes() for name in (lane, batch_queue(lane))} <= bound
