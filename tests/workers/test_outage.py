"""A Redis restart under a worker thread: wait for Redis, repeat the writes, never the call."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery.exceptions import Reject

from lanes.broker.embedded import EmbeddedRedis
from lanes.broker.message import Envelope
from lanes.kernel.config import Config
from lanes.kernel.errors import InfrastructureError
from lanes.ops.stack import sim_profiles
from lanes.router.decision import Step
from lanes.router.job import Job
from lanes.sim import Simulator
from lanes.stores.keys import Keys
from lanes.workers.outage import is_outage, outlast
from lanes.workers.outcome import Done
from lanes.workers.runner import run_step

from ..conftest import redis_context, write_config


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    made = EmbeddedRedis(tmp_path / "redis", appendfsync="always").start()
    yield made
    made.stop()


def _client(server: EmbeddedRedis) -> redis.Redis:
    return redis.Redis.from_url(server.url, decode_responses=True, socket_timeout=2)


def _start_later(server: EmbeddedRedis, delay_s: float) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(delay_s), server.start()))
    thread.start()
    return thread


def test_outlast_runs_again_once_redis_is_back(server: EmbeddedRedis) -> None:
    client = _client(server)
    client.set("kept", "yes")
    server.stop()
    tries: list[int] = []

    def write() -> int:
        tries.append(1)
        return int(client.incr("counter"))

    later = _start_later(server, 0.8)
    assert outlast(client.ping, 30, "counting", write) == 1
    later.join()
    assert len(tries) >= 2  # the first try met the outage
    assert client.get("kept") == "yes"  # the AOF brought the data back


def test_outlast_gives_up_after_outage_s(server: EmbeddedRedis) -> None:
    client = _client(server)
    server.stop()
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        outlast(client.ping, 0.5, "counting", lambda: client.incr("counter"))
    assert time.monotonic() - started >= 0.5


def test_is_outage_sees_through_celery_rejections() -> None:
    assert is_outage(InfrastructureError("Redis failed"))
    assert is_outage(Reject(redis.ConnectionError("refused"), requeue=False))
    assert not is_outage(Reject(ValueError("bad"), requeue=False))
    assert not is_outage(ValueError("bad"))


def test_a_restart_during_the_call_records_the_result_without_a_second_call(
    server: EmbeddedRedis, example_config: Config, tmp_path: Path
) -> None:
    profiles = sim_profiles(example_config)
    profiles["zai"] = profiles["zai"].model_copy(update={"latency_s": 1.0})
    with Simulator(port=0, profiles=profiles) as sim:
        config, _ = write_config(example_config, tmp_path, redis_url=server.url,
                                 simulator={"mode": "always", "port": sim.port})  # fmt: skip
        ctx = redis_context(config, _client(server), Keys("outage"))
        step = Step(instance="zai", model="glm-4.6")
        env = Envelope(job=Job(prompt="hello", max_tokens=16), chain=[step], instance="zai",
                       input_tokens=3)  # fmt: skip
        outcomes: list[object] = []
        runner = threading.Thread(target=lambda: outcomes.append(run_step(ctx, env)))
        runner.start()
        deadline = time.monotonic() + 10
        while sim.stats().get("zai", {}).get("in_flight", 0) == 0:
            assert time.monotonic() < deadline, "the call never started"
            time.sleep(0.02)
        server.stop()  # Redis goes away while the provider answers
        time.sleep(1.5)
        server.start()
        runner.join(timeout=30)
        ctx.close()

        assert len(outcomes) == 1 and isinstance(outcomes[0], Done)
        assert outcomes[0].result.status == "ok"
        assert ctx.stores.jobs.result(env.job.id) == outcomes[0].result
        assert ctx.stores.jobs.charges(env.job.id) == {"0:0": outcomes[0].result.cost_usd}
        assert sim.stats()["zai"]["requests"] == 1
