"""Contract tests of the response cache, against the in-memory twin and against real Redis.

The in-memory cache runs on a fake clock; Redis on its own, so expiry is checked with a 1 s
TTL and a real wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import redis

from lanes.broker.result import Result
from lanes.kernel.errors import InfrastructureError
from lanes.stores.cache import CachedAnswer, ResponseCache, parse_answer
from lanes.stores.keys import Keys
from lanes.stores.memory.cache import MemoryResponseCache
from lanes.stores.redis.cache import RedisResponseCache, glob_escape
from tests.fakes import FakeClock

KEY = "ab" * 32
OTHER = "cd" * 32


def answer(text: str = "4", cost_usd: float = 0.0021) -> CachedAnswer:
    return CachedAnswer(
        text=text,
        stop_reason="end_turn",
        usage={"input_tokens": 12, "output_tokens": 3},
        input_tokens=12,
        output_tokens=3,
        cost_usd=cost_usd,
        instance="claude2",
        model="claude-haiku-4-5",
        created_at=1_700_000_000.0,
    )


@dataclass
class Harness:
    cache: ResponseCache
    advance: Callable[[float], None]


@pytest.fixture(params=["memory", "redis"])
def harness(request: pytest.FixtureRequest) -> Harness:
    if request.param == "memory":
        clock = FakeClock(5_000.0)
        return Harness(MemoryResponseCache(clock), clock.advance)
    client = request.getfixturevalue("redis_client")
    keys = request.getfixturevalue("keys")
    return Harness(RedisResponseCache(client, keys), time.sleep)


def test_cache_miss_then_hit(harness: Harness) -> None:
    assert harness.cache.get(KEY) is None
    harness.cache.put(KEY, answer(), ttl_s=60)
    assert harness.cache.get(KEY) == answer()
    assert harness.cache.get(OTHER) is None


def test_cache_put_replaces_the_entry(harness: Harness) -> None:
    harness.cache.put(KEY, answer("old"), ttl_s=60)
    harness.cache.put(KEY, answer("new"), ttl_s=60)
    got = harness.cache.get(KEY)
    assert got is not None
    assert got.text == "new"


def test_cache_entry_expires_after_its_ttl(harness: Harness) -> None:
    harness.cache.put(KEY, answer(), ttl_s=1)
    harness.cache.put(OTHER, answer(), ttl_s=60)
    harness.advance(0.5)
    assert harness.cache.get(KEY) == answer()
    harness.advance(0.6)
    assert harness.cache.get(KEY) is None
    assert harness.cache.get(OTHER) == answer()


@pytest.mark.parametrize("ttl_s", [0, -1])
def test_cache_refuses_a_ttl_below_one_second(harness: Harness, ttl_s: int) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        harness.cache.put(KEY, answer(), ttl_s=ttl_s)
    assert harness.cache.get(KEY) is None


def test_cache_clear_counts_what_it_removed(harness: Harness) -> None:
    harness.cache.put(KEY, answer(), ttl_s=60)
    harness.cache.put(OTHER, answer(), ttl_s=60)
    assert harness.cache.clear() == 2
    assert harness.cache.get(KEY) is None
    assert harness.cache.get(OTHER) is None
    assert harness.cache.clear() == 0


def test_cache_clear_skips_expired_entries(harness: Harness) -> None:
    harness.cache.put(KEY, answer(), ttl_s=1)
    harness.cache.put(OTHER, answer(), ttl_s=60)
    harness.advance(1.1)
    assert harness.cache.clear() == 1


# -- memory only -----------------------------------------------------------------------------------


def test_memory_cache_sweeps_expired_entries_as_it_grows() -> None:
    clock = FakeClock()
    cache = MemoryResponseCache(clock)
    for i in range(100):
        cache.put(f"old{i}", answer(), ttl_s=1)
    clock.advance(2)
    for i in range(300):
        cache.put(f"new{i}", answer(), ttl_s=60)
    assert len(cache._entries) <= 300 + 1  # the 100 expired ones went in a sweep


def test_memory_caches_are_independent() -> None:
    one, two = MemoryResponseCache(), MemoryResponseCache()
    one.put(KEY, answer(), ttl_s=60)
    two.put(KEY, answer("two"), ttl_s=60)
    assert one.clear() == 1
    assert two.get(KEY) == answer("two")


# -- redis only ------------------------------------------------------------------------------------


def test_redis_cache_stores_json_with_a_ttl(redis_client: redis.Redis, keys: Keys) -> None:
    RedisResponseCache(redis_client, keys).put(KEY, answer(), ttl_s=90)
    name = keys.response_cache(KEY)
    assert parse_answer(redis_client.get(name)) == answer()  # type: ignore[arg-type]
    assert 88 <= int(redis_client.ttl(name)) <= 90


def test_redis_cache_put_in_queues_the_write(redis_client: redis.Redis, keys: Keys) -> None:
    cache = RedisResponseCache(redis_client, keys)
    pipe = redis_client.pipeline(transaction=True)
    pipe.set(keys.charges("job-1"), "x")
    cache.put_in(pipe, KEY, answer(), ttl_s=60)
    assert cache.get(KEY) is None  # nothing sent before execute
    assert pipe.execute() == [True, True]
    assert cache.get(KEY) == answer()


def test_redis_cache_clear_removes_only_this_prefix_cache_keys(
    redis_client: redis.Redis, keys: Keys
) -> None:
    cache = RedisResponseCache(redis_client, keys)
    neighbour = Keys(prefix=f"{keys.prefix}x")
    other = RedisResponseCache(redis_client, neighbour)
    cache.put(KEY, answer(), ttl_s=60)
    other.put(KEY, answer("other"), ttl_s=60)
    redis_client.set(keys.cooldown("claude1"), "429", ex=60)
    try:
        assert cache.clear() == 1
        assert cache.get(KEY) is None
        assert other.get(KEY) == answer("other")
        assert redis_client.get(keys.cooldown("claude1")) == "429"
    finally:
        other.clear()


def test_redis_cache_clear_walks_more_than_one_batch(redis_client: redis.Redis, keys: Keys) -> None:
    cache = RedisResponseCache(redis_client, keys)
    pipe = redis_client.pipeline(transaction=False)
    for i in range(2500):
        cache.put_in(pipe, f"{i:064x}", answer(), ttl_s=60)
    pipe.execute()
    assert cache.clear() == 2500
    assert list(redis_client.scan_iter(keys.response_cache("*"), count=1000)) == []


@pytest.mark.parametrize(
    "raw", ["{not json", '{"text": "4"}', '"a string"', answer().model_dump_json()[:-5]]
)
def test_redis_cache_corrupt_value_is_a_miss_and_dropped(
    redis_client: redis.Redis, keys: Keys, raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = RedisResponseCache(redis_client, keys)
    redis_client.set(keys.response_cache(KEY), raw, ex=60)
    assert cache.get(KEY) is None
    assert redis_client.exists(keys.response_cache(KEY)) == 0
    assert "unreadable cached answer" in caplog.text
    cache.put(KEY, answer(), ttl_s=60)
    assert cache.get(KEY) == answer()


def test_redis_cache_reads_undecoded_replies(redis_url: str, keys: Keys) -> None:
    client = redis.Redis.from_url(redis_url)  # bytes replies
    try:
        cache = RedisResponseCache(client, keys)
        cache.put(KEY, answer(), ttl_s=60)
        assert cache.get(KEY) == answer()
        assert cache.clear() == 1
    finally:
        client.close()


def test_redis_cache_errors_are_infrastructure_errors(dead_client: redis.Redis) -> None:
    cache = RedisResponseCache(dead_client, Keys(prefix="dead"))
    with pytest.raises(InfrastructureError, match="reading the response cache"):
        cache.get(KEY)
    with pytest.raises(InfrastructureError, match="writing the response cache"):
        cache.put(KEY, answer(), ttl_s=60)
    with pytest.raises(InfrastructureError, match="clearing the response cache"):
        cache.clear()


def test_glob_escape_matches_only_the_literal() -> None:
    assert glob_escape("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"
    assert glob_escape("lanes-test.1:cache:") == "lanes-test.1:cache:"


# -- the value type --------------------------------------------------------------------------------


def test_cached_answer_from_a_result() -> None:
    result = Result(
        job_id="j1",
        status="ok",
        instance="zai",
        model="glm-4.6",
        step=0,
        attempt=0,
        text="hello",
        stop_reason="end_turn",
        usage={"input_tokens": 5},
        input_tokens=5,
        output_tokens=1,
        cost_usd=0.01,
        finished_at=123.0,
    )
    got = CachedAnswer.from_result(result)
    assert (got.text, got.instance, got.model, got.cost_usd) == ("hello", "zai", "glm-4.6", 0.01)
    assert got.created_at == 123.0
    assert CachedAnswer.from_result(result, created_at=9.0).created_at == 9.0
    assert not got.simulated
    assert CachedAnswer.from_result(result.model_copy(update={"simulated": True})).simulated
    old = got.model_dump()
    del old["simulated"]  # an answer cached before the flag existed reads as not simulated
    assert CachedAnswer.model_validate(old).simulated is False
    failed = result.model_copy(update={"status": "failed", "error": "boom"})
    with pytest.raises(ValueError, match="failure is not an answer"):
        CachedAnswer.from_result(failed)
