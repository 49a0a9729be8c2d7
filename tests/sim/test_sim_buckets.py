"""Token-bucket arithmetic with an explicit clock."""

from __future__ import annotations

import pytest

from lanes.sim import ModelLimits
from lanes.sim.buckets import Limiter, TokenBucket


def test_bucket_starts_full_and_refills_continuously() -> None:
    bucket = TokenBucket(60, now_s=0.0)  # one per second
    assert bucket.remaining(0.0) == 60
    bucket.take(60, 0.0)
    assert bucket.remaining(0.0) == 0
    assert bucket.remaining(10.5) == 10
    assert bucket.remaining(1000.0) == 60


def test_bucket_wait_is_time_until_the_amount_fits() -> None:
    bucket = TokenBucket(120, now_s=0.0)  # two per second
    bucket.take(120, 0.0)
    assert bucket.wait_s(10, 0.0) == pytest.approx(5.0)
    assert bucket.wait_s(10, 5.0) == 0.0


def test_bucket_clamps_requests_larger_than_capacity() -> None:
    bucket = TokenBucket(100, now_s=0.0)
    assert bucket.wait_s(500, 0.0) == 0.0
    bucket.take(500, 0.0)
    assert bucket.remaining(0.0) == 0
    assert bucket.wait_s(500, 0.0) == pytest.approx(60.0)


def test_bucket_zero_limit_is_unlimited() -> None:
    bucket = TokenBucket(0, now_s=0.0)
    bucket.take(10**9, 0.0)
    assert bucket.unlimited
    assert bucket.wait_s(10**9, 0.0) == 0.0


def test_bucket_give_back_never_exceeds_capacity() -> None:
    bucket = TokenBucket(100, now_s=0.0)
    bucket.take(10, 0.0)
    bucket.give_back(50, 0.0)
    assert bucket.remaining(0.0) == 100


def test_limiter_denial_names_the_slowest_limit_and_charges_nothing() -> None:
    limiter = Limiter(ModelLimits(requests_per_min=60, input_tokens_per_min=600), now_s=0.0)
    assert limiter.admit(500, 0, 0.0) is None
    denial = limiter.admit(200, 0, 0.0)
    assert denial is not None
    assert denial.name == "input_tokens"
    assert denial.limit == 600
    assert denial.retry_after_s == 10  # 100 tokens short at 10 per second
    states = {s.name: s.remaining for s in limiter.states(0.0)}
    assert states == {"requests": 59, "input_tokens": 100}


def test_limiter_retry_after_is_rounded_up_and_at_least_one() -> None:
    limiter = Limiter(ModelLimits(requests_per_min=600), now_s=0.0)  # ten per second
    for _ in range(600):
        assert limiter.admit(1, 1, 0.0) is None
    denial = limiter.admit(1, 1, 0.0)
    assert denial is not None
    assert denial.retry_after_s == 1


def test_limiter_refunds_unused_output_estimate() -> None:
    limiter = Limiter(ModelLimits(output_tokens_per_min=1000), now_s=0.0)
    assert limiter.admit(10, 800, 0.0) is None
    limiter.refund(800, 50, 0.0)
    assert [s.remaining for s in limiter.states(0.0)] == [950]
    assert limiter.admit(10, 900, 0.0) is None


def test_limiter_denial_names_the_model_class_of_its_buckets() -> None:
    own = Limiter(ModelLimits(requests_per_min=1), now_s=0.0, model_class="claude-haiku-4-5")
    shared = Limiter(ModelLimits(requests_per_min=1), now_s=0.0)
    for limiter in (own, shared):
        assert limiter.admit(1, 1, 0.0) is None
    own_denial, shared_denial = own.admit(1, 1, 0.0), shared.admit(1, 1, 0.0)
    assert own_denial is not None and own_denial.model_class == "claude-haiku-4-5"
    assert shared_denial is not None and shared_denial.model_class is None
