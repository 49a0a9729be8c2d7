"""The prefix and batch stores: the same contract in Redis and in memory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from lanes.stores.batches import BatchStore, Parked
from lanes.stores.keys import Keys
from lanes.stores.memory.batches import MemoryBatches
from lanes.stores.memory.prefixes import MemoryPrefixes
from lanes.stores.prefixes import Gate, PrefixStore
from lanes.stores.redis.batches import RedisBatches
from lanes.stores.redis.prefixes import RedisPrefixes

MEMBERS = ["claude2", "claude3"]


@pytest.fixture(params=["redis", "memory"])
def prefixes(request: pytest.FixtureRequest, redis_client: redis.Redis, keys: Keys
             ) -> Iterator[PrefixStore]:  # fmt: skip
    yield RedisPrefixes(redis_client, keys) if request.param == "redis" else MemoryPrefixes()


@pytest.fixture(params=["redis", "memory"])
def batches(request: pytest.FixtureRequest, redis_client: redis.Redis, keys: Keys
            ) -> Iterator[BatchStore]:  # fmt: skip
    yield RedisBatches(redis_client, keys) if request.param == "redis" else MemoryBatches()


def test_the_first_placement_of_a_prefix_steers_the_jobs_after_it(prefixes: PrefixStore) -> None:
    assert prefixes.place("d1", "m", MEMBERS, "claude3") == "claude3"
    assert prefixes.place("d1", "m", MEMBERS, "claude2") == "claude3"
    assert prefixes.place("d1", "other-model", MEMBERS, "claude2") == "claude2"


def test_a_member_holding_the_prefix_wins_over_the_plan(prefixes: PrefixStore) -> None:
    prefixes.place("d2", "m", MEMBERS, "claude3")
    prefixes.written("d2", "m", "claude2", "job-a", ttl_s=300)
    assert prefixes.place("d2", "m", MEMBERS, "claude3") == "claude2"


def test_one_writer_at_a_time_then_everyone_reads(prefixes: PrefixStore) -> None:
    assert prefixes.gate("d3", "m", "claude2", "a", 60) is Gate.WRITE
    assert prefixes.gate("d3", "m", "claude2", "a", 60) is Gate.WRITE  # the writer again
    assert prefixes.gate("d3", "m", "claude2", "b", 60) is Gate.WAIT
    assert prefixes.gate("d3", "m", "claude3", "b", 60) is Gate.WRITE  # another account
    prefixes.written("d3", "m", "claude2", "a", ttl_s=300)
    assert prefixes.gate("d3", "m", "claude2", "b", 60) is Gate.WARM


def test_a_failed_writer_lifts_only_its_own_gate(prefixes: PrefixStore) -> None:
    assert prefixes.gate("d4", "m", "claude2", "a", 60) is Gate.WRITE
    prefixes.release("d4", "m", "claude2", "b")  # not the writer: nothing changes
    assert prefixes.gate("d4", "m", "claude2", "b", 60) is Gate.WAIT
    prefixes.release("d4", "m", "claude2", "a")
    assert prefixes.gate("d4", "m", "claude2", "b", 60) is Gate.WRITE


def _park(store: BatchStore, job: str, at: float, size: int = 100) -> bool:
    return store.park("claude1", "m", job, Parked({"job": job}, 1), size, at)


def test_parking_is_once_per_job(batches: BatchStore) -> None:
    assert _park(batches, "j1", 10.0)
    assert not _park(batches, "j1", 11.0)
    assert batches.waiting([("claude1", "m")]) == [1]
    assert batches.parked_ids() == {"j1"}


def test_a_batch_is_taken_after_the_window_or_when_full(batches: BatchStore) -> None:
    for i in range(3):
        _park(batches, f"j{i}", 10.0 + i)

    def take(batch_id: str, most: int, now_s: float) -> list[str]:
        return batches.take("claude1", "m", batch_id, most=most, most_bytes=10_000,
                            window_s=5.0, now_s=now_s)  # fmt: skip

    assert take("b0", 10, 12.0) == []  # neither full nor old enough
    assert take("b1", 2, 12.0) == ["j0", "j1"]  # full
    assert take("b2", 10, 20.0) == ["j2"]  # the window passed
    opened = {b.batch_id: b for b in batches.open_batches()}
    assert set(opened) == {"b1", "b2"} and opened["b1"].members == ["j0", "j1"]
    assert opened["b1"].provider_id is None


def test_a_batch_stops_at_its_byte_limit(batches: BatchStore) -> None:
    for i in range(3):
        _park(batches, f"k{i}", 1.0, size=400)
    taken = batches.take("claude1", "m", "b", most=10, most_bytes=900, window_s=0.0, now_s=5.0)
    assert taken == ["k0", "k1"] and batches.waiting([("claude1", "m")]) == [1]


def test_submission_withdrawal_and_forgetting(batches: BatchStore) -> None:
    _park(batches, "w1", 1.0)
    batches.take("claude1", "m", "b", most=10, most_bytes=10_000, window_s=0.0, now_s=2.0)
    batches.submitted("b", "msgbatch_1", {"m0": "w1"})
    (opened,) = batches.open_batches()
    assert opened.provider_id == "msgbatch_1" and opened.custom_ids == {"m0": "w1"}
    batches.withdraw("w1")
    member = batches.member("w1")
    assert member is not None and member.withdrawn and member.call == 1
    batches.forget(["w1"])
    batches.close("b")
    assert batches.member("w1") is None and batches.open_batches() == []


def test_the_lock_is_held_by_one_taker(batches: BatchStore) -> None:
    assert batches.lock("poll:x", 5.0)
    assert not batches.lock("poll:x", 5.0)
    batches.unlock("poll:x")
    assert batches.lock("poll:x", 5.0)


def test_members_are_read_in_order_in_one_go(batches: BatchStore) -> None:
    _park(batches, "r1", 1.0)
    _park(batches, "r2", 1.0)
    batches.withdraw("r2")
    found = batches.members(["r2", "missing", "r1"])
    assert [p.withdrawn if p else None for p in found] == [True, None, False]
    assert batches.members([]) == []
