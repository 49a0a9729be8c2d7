"""Contract tests of the rate limiter, run against the in-memory stub and against real Redis.

The stub runs on a fake clock, so its numbers are exact. Redis runs on its own clock, so buckets
refill a little while a test runs: token counts are checked within a small ``slack`` above the
exact value, and waits within a small margin below it. Real waits are at most ~1 s each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import redis

from lanes.kernel.config.models import Limits
from lanes.kernel.errors import InfrastructureError, LanesError, RequestTooLarge
from lanes.stores.keys import Keys
from lanes.stores.limiter import (
    Acquired,
    CapacityWait,
    Denied,
    RateLimiter,
    Reason,
    Reservation,
    ReservationTooLarge,
    acquire_blocking,
)
from lanes.stores.memory.limiter import MemoryLimiter
from lanes.stores.redis.limiter import RedisLimiter
from tests.fakes import FakeClock

SLACK_S = 0.5
"""Real time a Redis-backed test may spend between two calls that are checked together."""


@dataclass
class Harness:
    limiter: RateLimiter
    advance: Callable[[float], None]
    """Let time pass: moves the fake clock, or really sleeps for Redis."""
    exact: bool
    sleeps: list[float] = field(default_factory=list)

    def acquire(self, limits: Limits, inp: int = 0, out: int = 0, **kw: object) -> Acquired:
        result = self.try_acquire(limits, inp, out, **kw)
        assert isinstance(result, Acquired), result
        return result

    def try_acquire(
        self,
        limits: Limits,
        inp: int = 0,
        out: int = 0,
        *,
        instance: str = "acct",
        model_class: str = "all",
        lease_ttl_s: float = 30.0,
        reserve: float = 0.0,
    ) -> Acquired | Denied:
        return self.limiter.try_acquire(
            instance, model_class, limits, inp, out, lease_ttl_s, reserve
        )

    def denied(self, limits: Limits, inp: int = 0, out: int = 0, **kw: object) -> Denied:
        result = self.try_acquire(limits, inp, out, **kw)
        assert isinstance(result, Denied), result
        return result

    def blocking(self, limits: Limits, inp: int = 0, *, max_wait_s: float) -> Acquired:
        return acquire_blocking(
            self.limiter, "acct", "all", limits, inp, 0, 30, max_wait_s=max_wait_s, sleep=self.sleep
        )

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    def available(self, limits: Limits, bucket: str, instance: str = "acct") -> float:
        value = self.limiter.usage(instance, "all", limits)[bucket]
        assert isinstance(value, float | int)
        return float(value)

    def assert_tokens(self, limits: Limits, bucket: str, expected: float, per_min: int) -> None:
        """``bucket`` holds ``expected`` tokens, plus at most ``SLACK_S`` of refill on Redis."""
        got = self.available(limits, bucket)
        slack = 1e-9 if self.exact else per_min / 60 * SLACK_S
        assert expected - 1e-6 <= got <= expected + slack, (bucket, got, expected)

    def assert_wait(self, denied: Denied, expected_s: float) -> None:
        """``wait_s`` is ``expected_s`` (ms rounding), a little less on Redis."""
        low_s = expected_s - (1e-3 if self.exact else SLACK_S)
        assert low_s <= denied.wait_s <= expected_s + 1e-3, (denied, expected_s)


@pytest.fixture(params=["memory", "redis"])
def harness(request: pytest.FixtureRequest) -> Harness:
    if request.param == "memory":
        clock = FakeClock()
        return Harness(MemoryLimiter(clock), clock.advance, exact=True)
    client = request.getfixturevalue("redis_client")
    keys = request.getfixturevalue("keys")
    return Harness(RedisLimiter(client, keys), time.sleep, exact=False)


ALL = Limits(
    requests_per_min=60, input_tokens_per_min=1000, output_tokens_per_min=1000, concurrency=2
)


# -- granting and reserving ---------------------------------------------------------------------


def test_fresh_buckets_are_full_and_a_grant_reserves_everything(harness: Harness) -> None:
    granted = harness.acquire(ALL, 100, 200)
    assert granted.reservation.input_tokens == 100
    assert granted.reservation.output_tokens == 200
    harness.assert_tokens(ALL, "requests", 59, 60)
    harness.assert_tokens(ALL, "input_tokens", 900, 1000)
    harness.assert_tokens(ALL, "output_tokens", 800, 1000)
    assert harness.limiter.usage("acct", "all", ALL)["leases_in_use"] == 1


def test_unlimited_buckets_are_not_tracked(harness: Harness) -> None:
    unlimited = Limits()
    for _ in range(50):
        harness.acquire(unlimited, 10**6, 10**6)
    usage = harness.limiter.usage("acct", "all", unlimited)
    assert usage == {
        "requests": None,
        "input_tokens": None,
        "output_tokens": None,
        "leases_in_use": 50,
    }


def test_a_reservation_of_exactly_the_capacity_fits(harness: Harness) -> None:
    harness.acquire(ALL, 1000, 1000)
    harness.assert_tokens(ALL, "input_tokens", 0, 1000)


def test_instances_and_model_classes_have_their_own_buckets(harness: Harness) -> None:
    one_rpm = Limits(requests_per_min=1)
    harness.acquire(one_rpm)
    assert harness.denied(one_rpm).reason is Reason.REQUESTS
    harness.acquire(one_rpm, instance="other")
    harness.acquire(one_rpm, model_class="haiku")


# -- denials --------------------------------------------------------------------------------------


def test_requests_denial_reason_and_wait(harness: Harness) -> None:
    rpm = Limits(requests_per_min=60)
    for _ in range(60):
        harness.acquire(rpm)
    denied = harness.denied(rpm)
    assert denied.reason is Reason.REQUESTS
    harness.assert_wait(denied, 1.0)


@pytest.mark.parametrize(
    ("bucket", "reason"),
    [("input", Reason.INPUT_TOKENS), ("output", Reason.OUTPUT_TOKENS)],
)
def test_token_denial_reason_and_wait(harness: Harness, bucket: str, reason: Reason) -> None:
    limits = Limits(input_tokens_per_min=600, output_tokens_per_min=600)  # 10 tokens/s
    take = (600, 0) if bucket == "input" else (0, 600)
    harness.acquire(limits, *take)
    ask = (100, 0) if bucket == "input" else (0, 100)
    denied = harness.denied(limits, *ask)
    assert denied.reason is reason
    harness.assert_wait(denied, 10.0)


def test_the_reason_is_the_limit_with_the_longest_wait(harness: Harness) -> None:
    limits = Limits(requests_per_min=2, input_tokens_per_min=600)
    harness.acquire(limits, 600)
    harness.acquire(limits)
    denied = harness.denied(limits, 100)  # requests: 30 s; input tokens: 10 s
    assert denied.reason is Reason.REQUESTS
    harness.assert_wait(denied, 30.0)


def test_wait_is_capped(harness: Harness) -> None:
    limits = Limits(input_tokens_per_min=60)  # 1 token/s
    granted = harness.acquire(limits, 60)
    harness.limiter.settle(granted.reservation, 120, 0)  # 60 tokens into debt
    denied = harness.denied(limits, 60)
    assert denied.wait_s == 60.0


def test_a_denial_takes_nothing(harness: Harness) -> None:
    limits = Limits(requests_per_min=10, input_tokens_per_min=1000, output_tokens_per_min=1000)
    harness.acquire(limits, 900)
    assert harness.denied(limits, 200, 100).reason is Reason.INPUT_TOKENS
    harness.assert_tokens(limits, "requests", 9, 10)
    harness.assert_tokens(limits, "output_tokens", 1000, 1000)
    harness.assert_tokens(limits, "input_tokens", 100, 1000)


def test_refill_is_continuous_not_a_window_reset(harness: Harness) -> None:
    rpm = Limits(requests_per_min=60)  # 1 request/s
    for _ in range(60):
        harness.acquire(rpm)
    harness.advance(0.5)
    assert harness.denied(rpm).reason is Reason.REQUESTS
    harness.assert_tokens(rpm, "requests", 0.5, 60)
    harness.advance(0.55)
    harness.acquire(rpm)
    assert harness.denied(rpm).reason is Reason.REQUESTS


# -- oversize -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inp", "out", "reason"), [(1001, 0, "input_tokens"), (0, 1001, "output_tokens")]
)
def test_an_oversize_reservation_is_refused_distinctly(
    harness: Harness, inp: int, out: int, reason: str
) -> None:
    with pytest.raises(ReservationTooLarge) as raised:
        harness.try_acquire(ALL, inp, out)
    assert isinstance(raised.value, RequestTooLarge)
    assert raised.value.reason == reason
    assert raised.value.limit == 1000
    assert "1001" in str(raised.value)
    harness.assert_tokens(ALL, "requests", 60, 60)
    assert harness.limiter.usage("acct", "all", ALL)["leases_in_use"] == 0


def test_invalid_arguments_are_rejected(harness: Harness) -> None:
    with pytest.raises(ValueError):
        harness.try_acquire(ALL, -1, 0)
    with pytest.raises(ValueError):
        harness.try_acquire(ALL, 0, 0, lease_ttl_s=0)


# -- concurrency ----------------------------------------------------------------------------------


def test_concurrency_denial_and_release(harness: Harness) -> None:
    conc = Limits(concurrency=2)
    first = harness.acquire(conc, lease_ttl_s=30)
    harness.acquire(conc, lease_ttl_s=30)
    denied = harness.denied(conc)
    assert denied.reason is Reason.CONCURRENCY
    harness.assert_wait(denied, 30.0)
    harness.limiter.release(first.reservation)
    harness.acquire(conc)


def test_a_reserve_keeps_a_share_of_every_limit_for_work_without_one(harness: Harness) -> None:
    limits = Limits(requests_per_min=100, output_tokens_per_min=10_000, concurrency=40)
    for _ in range(38):  # 40 slots, of which 5% (2) are held back from reserved work
        harness.acquire(limits, 0, 10, reserve=0.05)
    denied = harness.denied(limits, 0, 10, reserve=0.05)
    assert denied.reason is Reason.CONCURRENCY
    harness.acquire(limits, 0, 10)  # work without a reserve takes the slots held back
    harness.acquire(limits, 0, 10)
    assert harness.denied(limits, 0, 10).reason is Reason.CONCURRENCY
    four = Limits(concurrency=4)  # 5% of 4 rounds up to a slot
    for _ in range(3):
        harness.acquire(four, reserve=0.05, instance="small")
    assert harness.denied(four, reserve=0.05, instance="small").reason is Reason.CONCURRENCY
    harness.acquire(four, instance="small")
    harness.acquire(Limits(concurrency=1), reserve=0.05, instance="one")  # one is never held


def test_a_reserve_holds_back_bucket_tokens_and_says_how_long_to_wait(harness: Harness) -> None:
    limits = Limits(requests_per_min=60, output_tokens_per_min=6_000)
    harness.acquire(limits, 0, 5_000)  # 1,000 output tokens left; 10% of 6,000 is 600
    harness.acquire(limits, 0, 400, reserve=0.1)  # leaves 600
    denied = harness.denied(limits, 0, 100, reserve=0.1)
    assert denied.reason is Reason.OUTPUT_TOKENS
    assert 0.9 - (0 if harness.exact else SLACK_S) <= denied.wait_s <= 1.0 + 1e-3  # 100 at 100/s
    harness.acquire(limits, 0, 600)  # without a reserve: all of it
    one = Limits(requests_per_min=1)  # a reserve never asks for more than a whole bucket
    harness.acquire(one, reserve=0.49, instance="small")


def test_concurrency_is_shared_by_the_model_classes_of_an_instance(harness: Harness) -> None:
    conc = Limits(concurrency=1)
    harness.acquire(conc, model_class="sonnet")
    assert harness.denied(conc, model_class="haiku").reason is Reason.CONCURRENCY
    harness.acquire(conc, instance="other")


def test_a_crashed_holders_lease_expires(harness: Harness) -> None:
    limits = Limits(output_tokens_per_min=1000, concurrency=1)
    crashed = harness.acquire(limits, 0, 500, lease_ttl_s=1.0)
    denied = harness.denied(limits, lease_ttl_s=1.0)
    assert denied.reason is Reason.CONCURRENCY
    assert 0 < denied.wait_s <= 1.0
    harness.advance(1.05)
    harness.acquire(limits, lease_ttl_s=30)
    # A late settle of the expired reservation still corrects the tokens, and leaves the new
    # holder's lease alone.
    assert harness.limiter.settle(crashed.reservation, 0, 0).applied
    harness.assert_tokens(limits, "output_tokens", 1000, 1000)
    assert harness.limiter.usage("acct", "all", limits)["leases_in_use"] == 1


# -- settle and release ---------------------------------------------------------------------------


def test_settle_refunds_unused_output_tokens(harness: Harness) -> None:
    otpm = Limits(output_tokens_per_min=1000)
    granted = harness.acquire(otpm, 0, 1000)
    settled = harness.limiter.settle(granted.reservation, 0, 100)
    assert settled.applied
    assert harness.limiter.usage("acct", "all", otpm)["leases_in_use"] == 0
    harness.acquire(otpm, 0, 900)
    assert harness.denied(otpm, 0, 100).reason is Reason.OUTPUT_TOKENS


def test_settle_twice_does_not_refund_twice(harness: Harness) -> None:
    otpm = Limits(output_tokens_per_min=1000)
    first = harness.acquire(otpm, 0, 500)
    harness.acquire(otpm, 0, 500)
    assert harness.limiter.settle(first.reservation, 0, 0).applied
    harness.assert_tokens(otpm, "output_tokens", 500, 1000)
    assert not harness.limiter.settle(first.reservation, 0, 0).applied
    assert not harness.limiter.release(first.reservation).applied
    harness.assert_tokens(otpm, "output_tokens", 500, 1000)


def test_settle_charges_usage_above_the_estimate(harness: Harness) -> None:
    itpm = Limits(input_tokens_per_min=600)  # 10 tokens/s
    granted = harness.acquire(itpm, 100)
    harness.limiter.settle(granted.reservation, 700, 0)
    harness.assert_tokens(itpm, "input_tokens", -100, 600)
    denied = harness.denied(itpm, 1)
    assert denied.reason is Reason.INPUT_TOKENS
    harness.assert_wait(denied, 10.1)


def test_release_refunds_the_whole_reservation(harness: Harness) -> None:
    limits = Limits(requests_per_min=10, input_tokens_per_min=1000, output_tokens_per_min=1000)
    granted = harness.acquire(limits, 500, 500)
    assert harness.limiter.release(granted.reservation).applied
    harness.assert_tokens(limits, "requests", 10, 10)
    harness.assert_tokens(limits, "input_tokens", 1000, 1000)
    harness.assert_tokens(limits, "output_tokens", 1000, 1000)
    assert harness.limiter.usage("acct", "all", limits)["leases_in_use"] == 0
    assert not harness.limiter.release(granted.reservation).applied
    harness.assert_tokens(limits, "requests", 10, 10)


def test_release_without_refund_only_drops_the_lease(harness: Harness) -> None:
    limits = Limits(input_tokens_per_min=1000, concurrency=1)
    granted = harness.acquire(limits, 400)
    assert harness.limiter.release(granted.reservation, refund=False).applied
    harness.assert_tokens(limits, "input_tokens", 600, 1000)
    harness.acquire(limits)


def test_settle_of_an_unknown_reservation_changes_nothing(harness: Harness) -> None:
    otpm = Limits(output_tokens_per_min=1000)
    harness.acquire(otpm, 0, 1000)
    ghost = Reservation("acct", "all", "no-such-lease", otpm, 0, 1000, 30.0)
    assert not harness.limiter.settle(ghost, 0, 0).applied
    harness.assert_tokens(otpm, "output_tokens", 0, 1000)


# -- waiting --------------------------------------------------------------------------------------


def test_acquire_blocking_sleeps_in_short_slices_then_grants(harness: Harness) -> None:
    rpm = Limits(requests_per_min=60)
    for _ in range(60):
        harness.acquire(rpm)
    granted = harness.blocking(rpm, max_wait_s=3)
    assert isinstance(granted, Acquired)
    assert harness.sleeps and all(0 < s <= 1.0 for s in harness.sleeps)
    assert sum(harness.sleeps) <= 1.0 + 1e-3


def test_acquire_blocking_gives_up_with_a_capacity_wait_signal(harness: Harness) -> None:
    conc = Limits(concurrency=1)
    harness.acquire(conc, lease_ttl_s=30)
    with pytest.raises(CapacityWait) as raised:
        harness.blocking(conc, max_wait_s=0.3)
    assert not isinstance(raised.value, LanesError)
    assert raised.value.reason is Reason.CONCURRENCY
    assert raised.value.wait_s > 0
    assert sum(harness.sleeps) == pytest.approx(0.3)


def test_acquire_blocking_does_not_wait_for_an_oversize_reservation(harness: Harness) -> None:
    with pytest.raises(ReservationTooLarge):
        harness.blocking(ALL, 5000, max_wait_s=10)
    assert harness.sleeps == []


# -- Redis only -----------------------------------------------------------------------------------


def test_each_call_is_one_evalsha(
    redis_client: redis.Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = RedisLimiter(redis_client, keys)
    warm = limiter.try_acquire("acct", "all", ALL, 1, 1, 30)  # loads the scripts
    assert isinstance(warm, Acquired)
    limiter.settle(warm.reservation, 1, 1)
    limiter.usage("acct", "all", ALL)
    commands: list[str] = []
    real = redis_client.execute_command

    def counting(*args: object, **kwargs: object) -> object:
        commands.append(str(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(redis_client, "execute_command", counting)
    granted = limiter.try_acquire("acct", "all", ALL, 1, 1, 30)
    assert isinstance(granted, Acquired)
    limiter.settle(granted.reservation, 1, 1)
    limiter.usage("acct", "all", ALL)
    assert commands == ["EVALSHA", "EVALSHA", "EVALSHA"]


def test_every_key_carries_the_instance_hash_tag(redis_client: redis.Redis, keys: Keys) -> None:
    limiter = RedisLimiter(redis_client, keys)
    limiter.try_acquire("acct", "all", ALL, 10, 10, 30)
    stored = list(redis_client.scan_iter(keys.scan_pattern()))
    assert len(stored) == 3  # buckets, leases, reservation marker
    assert all("{acct}" in key for key in stored)
    assert all(redis_client.pttl(key) > 0 for key in stored)


def test_works_without_decoded_responses(
    redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    raw_client = redis.Redis.from_url(redis_url)
    limiter = RedisLimiter(raw_client, keys)
    granted = limiter.try_acquire("acct", "all", ALL, 10, 10, 30)
    assert isinstance(granted, Acquired)
    assert limiter.usage("acct", "all", ALL)["leases_in_use"] == 1
    assert limiter.settle(granted.reservation, 5, 5).applied
    raw_client.close()


def test_redis_errors_become_infrastructure_errors(dead_client: redis.Redis, keys: Keys) -> None:
    limiter = RedisLimiter(dead_client, keys)
    with pytest.raises(InfrastructureError) as raised:
        limiter.try_acquire("acct", "all", ALL, 1, 1, 30)
    assert isinstance(raised.value.__cause__, redis.RedisError)
    reservation = Reservation("acct", "all", "x", ALL, 1, 1, 30.0)
    with pytest.raises(InfrastructureError):
        limiter.settle(reservation, 1, 1)
    with pytest.raises(InfrastructureError):
        limiter.usage("acct", "all", ALL)
