"""Contract tests of the lane state store, against the in-memory twin and against real Redis.

The in-memory store runs on a fake clock; Redis on its own, so cooldowns are checked within a
small margin and the health half-life is short (1 s) to see recovery within a real wait.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import redis

from lanes.kernel.config.models import ALL_MODELS, Limits
from lanes.kernel.errors import InfrastructureError
from lanes.router.lane_state import LaneStatus
from lanes.stores.keys import Keys
from lanes.stores.lane_state import OBSERVED_WEIGHT, LaneStateStore, headroom
from lanes.stores.limiter import Acquired
from lanes.stores.memory.lane_state import MemoryLaneState
from lanes.stores.redis.lane_state import RedisLaneState
from lanes.stores.redis.limiter import RedisLimiter
from tests.fakes import FakeClock

SLACK_S = 0.5
HALF_LIFE_S = 1.0


@dataclass
class Harness:
    state: LaneStateStore
    advance: Callable[[float], None]
    exact: bool

    def assert_cooldown(self, instance: str, expected_s: float) -> None:
        got = self.state.status(instance).cooldown_s
        low_s = expected_s - (1e-6 if self.exact else SLACK_S)
        assert low_s <= got <= expected_s + 1e-6, (got, expected_s)


@pytest.fixture(params=["memory", "redis"])
def harness(request: pytest.FixtureRequest) -> Harness:
    if request.param == "memory":
        clock = FakeClock(5_000.0)
        return Harness(MemoryLaneState(clock, health_half_life_s=HALF_LIFE_S), clock.advance, True)
    client = request.getfixturevalue("redis_client")
    keys = request.getfixturevalue("keys")
    store = RedisLaneState(client, keys, health_half_life_s=HALF_LIFE_S)
    return Harness(store, time.sleep, exact=False)


def test_an_unknown_instance_is_healthy(harness: Harness) -> None:
    assert harness.state.status("acct") == LaneStatus()
    assert harness.state.statuses(["a", "b"]) == {"a": LaneStatus(), "b": LaneStatus()}
    assert harness.state.statuses([]) == {}


# -- cooldown -------------------------------------------------------------------------------------


def test_cooldown_is_set_and_reported(harness: Harness) -> None:
    left_s = harness.state.cool_down("acct", 10, "429 from provider")
    assert left_s == pytest.approx(10)
    harness.assert_cooldown("acct", 10)
    assert harness.state.status("other").cooldown_s == 0


def test_a_shorter_cooldown_does_not_shorten_a_longer_one(harness: Harness) -> None:
    harness.state.cool_down("acct", 10, "long")
    left_s = harness.state.cool_down("acct", 2, "short")
    assert 10 - SLACK_S <= left_s <= 10
    harness.assert_cooldown("acct", 10)
    harness.state.cool_down("acct", 20, "longer")
    harness.assert_cooldown("acct", 20)


def test_a_cooldown_ends_by_itself(harness: Harness) -> None:
    harness.state.cool_down("acct", 0.3, "429")
    harness.advance(0.35)
    assert harness.state.status("acct").cooldown_s == 0
    harness.state.cool_down("acct", 0.2, "again")  # an expired one does not block a new one
    harness.assert_cooldown("acct", 0.2)


def test_a_non_positive_cooldown_changes_nothing(harness: Harness) -> None:
    assert harness.state.cool_down("acct", 0, "retry-after: 0") == 0
    assert harness.state.status("acct").cooldown_s == 0


# -- disable / enable / clear ---------------------------------------------------------------------


def test_disable_and_enable(harness: Harness) -> None:
    harness.state.disable("acct", "401 invalid x-api-key")
    assert harness.state.status("acct").disabled_reason == "401 invalid x-api-key"
    assert harness.state.status("other").disabled_reason is None
    harness.state.enable("acct")
    assert harness.state.status("acct").disabled_reason is None
    harness.state.enable("acct")  # enabling twice is fine


def test_clear_forgets_everything(harness: Harness) -> None:
    harness.state.disable("acct", "402")
    harness.state.cool_down("acct", 30, "429")
    harness.state.record_failure("acct", "timeout")
    harness.state.clear("acct")
    assert harness.state.status("acct") == LaneStatus()


def test_statuses_reports_each_instance(harness: Harness) -> None:
    harness.state.disable("a", "403")
    harness.state.cool_down("b", 10, "429")
    harness.state.record_failure("c", "server_error")
    got = harness.state.statuses(["a", "b", "c", "d"])
    assert got["a"].disabled_reason == "403"
    assert got["b"].cooldown_s > 10 - SLACK_S
    assert got["c"].health < 1.0
    assert got["d"] == LaneStatus()


# -- health ---------------------------------------------------------------------------------------


def test_health_decreases_with_failures_and_recovers_with_successes(harness: Harness) -> None:
    healths = [harness.state.record_failure("acct", "timeout") for _ in range(3)]
    assert healths == sorted(healths, reverse=True)
    assert healths[-1] < 0.5
    assert 0.0 <= harness.state.status("acct").health < 0.5
    for _ in range(10):
        harness.state.record_success("acct")
    assert harness.state.status("acct").health > 0.7


def test_health_recovers_as_failures_fade(harness: Harness) -> None:
    for _ in range(5):
        harness.state.record_failure("acct", "overloaded")
    before = harness.state.status("acct").health
    harness.advance(2 * HALF_LIFE_S)  # failures now weigh a quarter
    after = harness.state.status("acct").health
    assert before < 0.3
    assert after > before + 0.2


def test_health_stays_in_range(harness: Harness) -> None:
    for _ in range(50):
        assert 0.0 <= harness.state.record_failure("acct", "timeout") <= 1.0
    for _ in range(50):
        assert 0.0 <= harness.state.record_success("acct") <= 1.0
    assert harness.state.record_success("fresh") == pytest.approx(1.0)


def test_successes_keep_moving_means_of_latency_and_output(harness: Harness) -> None:
    state = harness.state
    state.record_success("acct")
    assert state.status("acct").latency_s is None  # a success without figures adds none
    state.record_success("acct", 2.0, 400)
    assert state.status("acct").latency_s == pytest.approx(2.0)
    assert state.status("acct").output_tokens == pytest.approx(400)
    state.record_success("acct", 1.0, 200)
    state.record_failure("acct", "timeout")  # failures leave the means alone
    status = state.status("acct")
    assert status.latency_s == pytest.approx(2.0 - OBSERVED_WEIGHT * 1.0)
    assert status.output_tokens == pytest.approx(400 - OBSERVED_WEIGHT * 200)
    assert state.status("other").latency_s is None
    state.record_success("acct", 4.0, 10, "opus")
    state.record_success("acct", 2.0, 10, "opus")
    assert state.status("acct").model_latency_s == {
        "opus": pytest.approx(4.0 - OBSERVED_WEIGHT * 2.0)
    }


# -- Redis only: several clients and processes ----------------------------------------------------


def _cool_down_in_child(redis_url: str, prefix: str, seconds: float, reason: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    RedisLaneState(client, Keys(prefix=prefix)).cool_down("acct", seconds, reason)
    client.close()


def test_state_written_by_one_process_is_seen_by_another(
    redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    ctx = multiprocessing.get_context("spawn")
    for seconds, reason in [(20.0, "429 long"), (3.0, "429 short")]:
        child = ctx.Process(
            target=_cool_down_in_child, args=(redis_url, keys.prefix, seconds, reason)
        )
        child.start()
        child.join(timeout=30)
        assert child.exitcode == 0
    status = RedisLaneState(redis_client, keys).status("acct")
    assert status.cooldown_s > 3.0  # the short cooldown did not shorten the long one
    assert redis_client.get(keys.cooldown("acct")) == "429 long"


def test_state_written_by_one_client_is_seen_by_another(
    redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    other = redis.Redis.from_url(redis_url)  # bytes replies: decoding must not matter
    writer, reader = RedisLaneState(redis_client, keys), RedisLaneState(other, keys)
    writer.disable("acct", "401")
    writer.cool_down("acct", 5, "429")
    writer.record_failure("acct", "timeout")
    status = reader.status("acct")
    assert status.disabled_reason == "401"
    assert status.cooldown_s > 4
    assert status.health == pytest.approx(0.5, abs=0.01)
    other.close()


def test_statuses_is_one_round_trip(
    redis_client: redis.Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RedisLaneState(redis_client, keys)
    calls: list[int] = []
    real = redis.client.Pipeline.execute

    def counting(self: redis.client.Pipeline, *args: object, **kwargs: object) -> object:
        calls.append(len(self.command_stack))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", counting)
    monkeypatch.setattr(
        redis_client, "execute_command", lambda *a, **k: pytest.fail(f"extra command {a[0]}")
    )
    store.statuses(["a", "b", "c"])
    assert calls == [1 + 3 * 3 + 1]  # the time, three reads per lane, the backlog of all
    limited = RedisLaneState(redis_client, keys, limits={"a": Limits(requests_per_min=60)})
    limited.statuses(["a", "b", "c"])
    assert calls[-1] == 1 + 3 * 3 + 1 + 1  # and the limiter's usage of the limited lane


def test_headroom_is_what_the_buckets_would_admit_now() -> None:
    assert headroom(600.0, 60_000.0, 100.0) == 600  # requests bind
    assert headroom(20.0, 2_000.0, 1_000.0) == 2  # output tokens bind
    assert headroom(20.0, 2_000.0, None) == 20  # no mean output yet: tokens not counted
    assert headroom(-50.0, 2_000.0, 100.0) == 0  # overdrawn
    assert headroom(None, 500.0, 100.0) == 5  # requests unlimited
    assert headroom(None, None, 100.0) is None  # nothing limits it


def test_redis_lane_state_reads_the_headroom_the_limiter_leaves(
    redis_client: redis.Redis, keys: Keys
) -> None:
    limits = Limits(requests_per_min=60)
    state = RedisLaneState(redis_client, keys, limits={"acct": limits})
    assert state.status("acct").headroom == pytest.approx(60)
    assert state.status("other").headroom is None  # no limits given: not read
    limiter = RedisLimiter(redis_client, keys)
    for _ in range(20):
        assert isinstance(limiter.try_acquire("acct", ALL_MODELS, limits, 0, 0, 30), Acquired)
    assert 40 <= state.status("acct").headroom <= 41  # type: ignore[operator]
    redis_client.script_flush()  # a restarted Redis has forgotten usage.lua: loaded again
    assert 40 <= state.status("acct").headroom <= 41  # type: ignore[operator]


def test_redis_errors_become_infrastructure_errors(dead_client: redis.Redis, keys: Keys) -> None:
    store = RedisLaneState(dead_client, keys)
    with pytest.raises(InfrastructureError) as raised:
        store.statuses(["acct"])
    assert isinstance(raised.value.__cause__, redis.RedisError)
    for call in (
        lambda: store.cool_down("acct", 5, "429"),
        lambda: store.disable("acct", "401"),
        lambda: store.enable("acct"),
        lambda: store.record_success("acct"),
        lambda: store.record_failure("acct", "timeout"),
        lambda: store.clear("acct"),
    ):
        with pytest.raises(InfrastructureError):
            call()


def test_redis_lane_state_reads_the_backlog_the_job_store_keeps(
    redis_client: redis.Redis, keys: Keys
) -> None:
    from lanes.stores.redis.jobs import RedisJobStore

    jobs = RedisJobStore(redis_client, keys, ttl_s=60)
    lanes = RedisLaneState(redis_client, keys)
    for i in range(3):
        jobs.track(f"job-{i}", f"fp-{i}", "koala", {"step": 0})
    jobs.hand_on("job-2", 0, "zai", {"step": 1})
    statuses = lanes.statuses(["koala", "zai", "claude1"])
    assert [statuses[n].backlog for n in ("koala", "zai", "claude1")] == [2, 1, 0]
    redis_client.hset(keys.backlog(), "claude1", "-3")  # a count gone wrong reads as none
    assert lanes.status("claude1").backlog == 0
