from __future__ import annotations

import subprocess
import sys
from collections import Counter

import redis

from lanes.dispatch.pools import PoolBalancer
from lanes.kernel.config import Config
from lanes.router.lane_state import LaneStatus, StaticLaneState
from lanes.stores.keys import Keys
from lanes.stores.redis.counter import RedisCounter

_PICKER = """
import sys, redis
from lanes.stores.keys import Keys
from lanes.dispatch.pools import PoolBalancer
from lanes.stores.redis.counter import RedisCounter
from lanes.kernel.config import load_config
from lanes.router.lane_state import StaticLaneState
cfg = load_config(sys.argv[1], env={})
client = redis.Redis.from_url(sys.argv[2], decode_responses=True)
balancer = PoolBalancer(cfg, RedisCounter(client, Keys(sys.argv[3])), StaticLaneState())
print(" ".join(balancer.expand("vital") for _ in range(int(sys.argv[4]))))
"""


def test_pool_alternates_across_two_dispatcher_processes(
    redis_url: str, redis_client: redis.Redis, keys: Keys
) -> None:
    from ..conftest import EXAMPLE

    args = [sys.executable, "-c", _PICKER, str(EXAMPLE), redis_url, keys.prefix, "50"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    picks = [p.communicate(timeout=60)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    both = Counter(picks[0] + picks[1])
    # One global counter: 100 picks split exactly evenly, whatever the interleaving.
    assert both == Counter({"claude2": 50, "claude3": 50})
    assert int(redis_client.get(keys.pool_counter("vital")) or 0) == 100


def test_pool_skips_members_cooling_down(
    example_config: Config, redis_client: redis.Redis, keys: Keys
) -> None:
    state = StaticLaneState({"claude2": LaneStatus(cooldown_s=30)})
    balancer = PoolBalancer(example_config, RedisCounter(redis_client, keys), state)
    assert {balancer.expand("vital") for _ in range(6)} == {"claude3"}


def test_pool_expand_leaves_plain_instances_alone(
    example_config: Config, redis_client: redis.Redis, keys: Keys
) -> None:
    balancer = PoolBalancer(example_config, RedisCounter(redis_client, keys), StaticLaneState())
    assert balancer.expand("zai") == "zai"
    assert redis_client.get(keys.pool_counter("zai")) is None
