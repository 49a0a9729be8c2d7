"""Routing by load: each target's wait behind its backlog, in the score and in the decision."""

from __future__ import annotations

import math

import pytest

from lanes.kernel.config import Config
from lanes.router.candidates import build_candidates
from lanes.router.engine import Router
from lanes.router.job import Job
from lanes.router.lane_state import CachedLaneState, LaneStatus, StaticLaneState
from lanes.router.load import MAX_WAIT_S, backlog_s, instance_rate, queue_waits
from tests.fakes import FakeClock
from tests.router.fixed_classifier import fixed

CODE = "Write a Python function that parses ISO dates"


def router(config: Config, **backlogs: int) -> Router:
    states = {lane: LaneStatus(backlog=n) for lane, n in backlogs.items()}
    return Router(config, lane_state=StaticLaneState(states))


def test_instance_rate_is_the_tightest_limit(example_config: Config) -> None:
    koala = example_config.instances["koala"]  # 120 requests/min, 4 at once, models 4 s and 2 s
    assert instance_rate(example_config, koala, 10, 100) == pytest.approx(4 / 3.0)
    zai = example_config.instances["zai"]  # 600/min, 32 at once (models 5 s and 3 s), 200k out/min
    assert instance_rate(example_config, zai, 10, 100) == pytest.approx(32 / 4.0)
    assert instance_rate(example_config, zai, 10, 100_000) == pytest.approx(200_000 / 60 / 100_000)
    unlimited = koala.model_copy(update={"limits": koala.limits.model_copy(
        update={"requests_per_min": 0, "concurrency": 0})})  # fmt: skip
    assert math.isinf(instance_rate(example_config, unlimited, 10, 100))


def test_queue_waits_add_a_pools_members_and_leave_idle_targets_out(
    example_config: Config,
) -> None:
    table = build_candidates(example_config)
    statuses = {name: LaneStatus() for name in example_config.instances}
    assert queue_waits(example_config, table, statuses, 10, 100) == {}
    statuses.update(claude2=LaneStatus(backlog=300), koala=LaneStatus(backlog=8))
    waits = queue_waits(example_config, table, statuses, 10, 100)
    assert waits["koala"] == pytest.approx(8 / (4 / 3.0))
    # the vital pool: claude2's 300 jobs over both members' rates (1000/min and 64 at once each)
    pool_rate = 2 * min(1000 / 60, 64 / ((12.0 + 6.0 + 2.5) / 3))
    assert waits["vital"] == pytest.approx(300 / pool_rate)
    assert set(waits) == {"koala", "vital", "claude2"}  # claude2 is also a target of its own
    assert max(waits.values()) < MAX_WAIT_S


def test_a_saturated_cheap_lane_loses_work_to_the_next_acceptable_one(
    example_config: Config,
) -> None:
    idle = router(example_config).decide(Job(prompt=CODE, max_tokens=200))
    assert idle.instance == "koala" and idle.estimated_wait_s == 0
    busy = router(example_config, koala=300).decide(Job(prompt=CODE, max_tokens=200))
    assert busy.instance == "zai" and busy.estimated_wait_s == 0
    koala = next(a for a in busy.alternatives if a.instance == "koala")
    assert koala.wait_s == pytest.approx(300 / (4 / 3.0), rel=1e-3)


def test_the_wait_is_in_the_decisions_latency_and_reasons(example_config: Config) -> None:
    decision = router(example_config, koala=2).decide(Job(prompt=CODE, max_tokens=200))
    assert decision.instance == "koala" and decision.estimated_wait_s == 1.5
    assert decision.estimated_latency_s > 1.5
    assert any("waiting" in reason for reason in decision.reasons)


def test_load_never_bends_the_hard_rules(example_config: Config) -> None:
    vital = Router(example_config, classifier=fixed(vital=True),
                   lane_state=StaticLaneState({"claude2": LaneStatus(backlog=10_000),
                                               "claude3": LaneStatus(backlog=10_000)}))  # fmt: skip
    decision = vital.decide(Job(prompt="x"))
    assert decision.instance not in ("zai", "koala")
    assert not {step.instance for step in decision.chain} & {"zai", "koala"}
    pinned = router(example_config, koala=10_000).decide(Job(prompt=CODE, instance="koala"))
    assert pinned.instance == "koala" and pinned.estimated_wait_s > 1000


def test_a_cached_lane_view_counts_the_jobs_this_process_sent(example_config: Config) -> None:
    inner = StaticLaneState({"koala": LaneStatus(backlog=1)})
    ticks = FakeClock()
    cached = CachedLaneState(inner, ttl_s=1.0, clock=ticks)
    assert cached.status("koala").backlog == 1
    cached.count_tracked("koala")
    cached.count_tracked("koala")
    cached.count_tracked("nowhere")  # not read yet: nothing to count on
    assert cached.status("koala").backlog == 3
    ticks.advance(1.0)
    assert cached.status("koala").backlog == 1  # the next read says what Redis says


def test_backlog_s_is_none_without_a_bound_and_capped_with_one() -> None:
    assert backlog_s(2.0, 0) == 0.0 and backlog_s(math.inf, 0) == 0.0
    assert backlog_s(2.0, 9) == 4.5
    assert backlog_s(math.inf, 9) is None
    assert backlog_s(0.0, 9) == MAX_WAIT_S and backlog_s(1e-9, 9) == MAX_WAIT_S
