"""The liveness canary's rule, and its reads and writes on a real Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis

from lanes.broker.app import create_app
from lanes.kernel.config import Config
from lanes.stores.keys import Keys
from lanes.stores.redis.lane_state import RedisLaneState
from lanes.workers.services.liveness import (
    judge,
    liveness,
    record_clock,
    send_canaries,
    server_time_s,
    took_canary,
)


def test_a_canary_waiting_past_the_timeout_with_no_job_finished_means_not_consuming() -> None:
    assert judge("zai", 100.0, None, None, None, 30).consuming is None
    assert judge("zai", 100.0, None, 90.0, None, 30).consuming is True
    assert judge("zai", 100.0, 80.0, 50.0, None, 30).consuming is True  # 20 s: within
    stuck = judge("zai", 100.0, 60.0, 50.0, 59_000.0, 30)
    assert stuck.consuming is False and "waited 40s" in stuck.detail and stuck.waiting_s == 40
    busy = judge("zai", 100.0, 60.0, 50.0, 61_000.0, 30)  # a job finished after it was sent
    assert busy.consuming is True


LANES = ["zai", "koala"]


@pytest.fixture
def rig(isolated_redis_url: str, keys: Keys) -> Iterator[tuple[redis.Redis, Keys]]:
    """A Redis db no worker consumes: canaries sent there wait."""
    client = redis.Redis.from_url(isolated_redis_url, decode_responses=True)
    yield client, keys
    client.delete(*(keys.queue(lane) for lane in LANES), *(keys.canary(lane) for lane in LANES))
    client.delete(keys.clocks())
    client.delete(*(keys.health(lane) for lane in LANES))
    client.close()


def test_canaries_are_sent_taken_and_judged_with_redis_time(
    rig: tuple[redis.Redis, Keys], example_config: Config, isolated_redis_url: str
) -> None:
    client, keys = rig
    lanes = LANES
    config = example_config.model_copy(update={"redis_prefix": keys.prefix})
    app = create_app(config, isolated_redis_url)
    try:
        send_canaries(app, client, keys, lanes)
        first_sent = client.hget(keys.canary(lanes[0]), "sent")
        send_canaries(app, client, keys, lanes)  # the oldest outstanding stays
        assert client.hget(keys.canary(lanes[0]), "sent") == first_sent
        assert client.llen(keys.queue(lanes[0])) == 2  # two canaries wait on the queue
    finally:
        app.close()
    time.sleep(0.3)
    found = liveness(client, keys, lanes, timeout_s=0.2)
    assert {lane: state.consuming for lane, state in found.items()} == dict.fromkeys(lanes, False)
    took_canary(client, keys, lanes[0])
    RedisLaneState(client, keys).record_success(lanes[1])  # a job finished on lane b
    found = liveness(client, keys, lanes, timeout_s=0.2)
    assert found[lanes[0]].consuming is True and found[lanes[1]].consuming is True


def test_a_host_clock_is_recorded_beside_the_redis_clock(rig: tuple[redis.Redis, Keys]) -> None:
    client, keys = rig
    record_clock(client, keys, host="host-a")
    record = json.loads(client.hget(keys.clocks(), "host-a") or "{}")
    assert abs(record["local"] - time.time()) < 5
    assert abs(record["redis"] - server_time_s(client)) < 5
