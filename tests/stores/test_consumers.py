"""Which lanes workers consume, as the workers' heartbeats tell it (real Redis)."""

from __future__ import annotations

import threading

import redis

from lanes.stores import consumers
from lanes.stores.keys import Keys


def test_consumers_a_beat_serves_its_lanes_until_the_worker_leaves(
    redis_client: redis.Redis, keys: Keys
) -> None:
    assert consumers.served(redis_client, keys, ["zai", "koala"]) == set()
    consumers.beat(redis_client, keys, "w1@host", ["zai"])
    assert consumers.served(redis_client, keys, ["zai", "koala"]) == {"zai"}
    consumers.leave(redis_client, keys, "w1@host", ["zai"])
    assert consumers.served(redis_client, keys, ["zai", "koala"]) == set()


def test_consumers_an_old_beat_does_not_count(redis_client: redis.Redis, keys: Keys) -> None:
    seconds, _ = redis_client.time()
    old = float(seconds) - consumers.STALE_S - 1
    redis_client.zadd(keys.consumers("zai"), {"gone@host": old})
    assert consumers.served(redis_client, keys, ["zai"]) == set()
    consumers.beat(redis_client, keys, "w2@host", ["zai"])
    assert consumers.served(redis_client, keys, ["zai"]) == {"zai"}


def test_consumers_heartbeat_beats_at_once_and_leaves_when_stopped(
    redis_client: redis.Redis, keys: Keys
) -> None:
    stop = threading.Event()
    thread = consumers.start_heartbeat(redis_client, keys, "w3@host", ["koala"], stop)
    try:
        for _ in range(100):
            if consumers.served(redis_client, keys, ["koala"]):
                break
            stop.wait(0.02)
        assert consumers.served(redis_client, keys, ["koala"]) == {"koala"}
    finally:
        stop.set()
        thread.join(5)
    assert consumers.served(redis_client, keys, ["koala"]) == set()


def test_consumers_real_workers_serve_their_lanes(lane_stack: object) -> None:
    from ..conftest import LaneStack

    assert isinstance(lane_stack, LaneStack)
    client = lane_stack.redis()
    keys = Keys(lane_stack.config.redis_prefix)
    lanes = lane_stack.config.lanes()
    assert consumers.served(client, keys, lanes) == set(lanes)
    other = Keys(f"{keys.prefix}-nobody")
    assert consumers.served(client, other, lanes) == set()
