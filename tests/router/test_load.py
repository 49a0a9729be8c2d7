"""Routing by load: each target's wait behind its backlog, in the score and in the decision."""

from __future__ import annotations

import math

import pytest

from lanes.kernel.config import Config
from lanes.kernel.config.models import Weights
from lanes.router.candidates import build_candidates
from lanes.router.engine import Router
from lanes.router.job import Job
from lanes.router.lane_state import CachedLaneState, LaneStatus, StaticLaneState
from lanes.router.load import (
    MAX_WAIT_S,
    Drain,
    backlog_s,
    instance_rate,
    lane_drain,
    measured_latencies,
    queue_waits,
)
from lanes.router.scorer import patient
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
    assert backlog_s(Drain(2.0), 0) == 0.0 and backlog_s(Drain(math.inf), 0) == 0.0
    assert backlog_s(Drain(2.0), 9) == 4.5
    assert backlog_s(Drain(math.inf), 9) is None
    assert backlog_s(Drain(0.0), 9) == MAX_WAIT_S and backlog_s(Drain(1e-9), 9) == MAX_WAIT_S
    # the first jobs go as fast as concurrency lets while the buckets hold capacity
    assert backlog_s(Drain(2.0, burst=10.0, headroom=5.0), 9) == pytest.approx(0.5 + 2.0)
    assert backlog_s(Drain(2.0, headroom=50.0), 9) == 0.0
    assert backlog_s(Drain(0.0, burst=10.0, headroom=50.0), 9) == pytest.approx(0.9)
    pool = Drain(2.0, 10.0, 5.0) + Drain(1.0, 4.0, None)  # one member's headroom unknown
    assert pool == Drain(3.0, 14.0, None)


def test_measured_latency_and_output_replace_the_configured_ones(example_config: Config) -> None:
    koala = example_config.instances["koala"]
    guessed = lane_drain(example_config, "koala", LaneStatus(), 10, 100)
    assert guessed.rate == pytest.approx(instance_rate(example_config, koala, 10, 100))
    fast = LaneStatus(latency_s=0.4, output_tokens=50)  # 4 at once over 0.4 s: 10/s, > 2/s
    assert lane_drain(example_config, "koala", fast, 10, 100) == Drain(120 / 60, 10.0, None)
    zai = LaneStatus(output_tokens=100_000)  # 200k output tokens a minute at 100k a call
    drain = lane_drain(example_config, "zai", zai, 10, 10)
    assert drain.rate == pytest.approx(200_000 / 60 / 100_000)


def test_a_job_waits_behind_a_backlog_no_longer_than_its_call_would_take(
    example_config: Config,
) -> None:
    # koala starts 4/3 jobs a second (models of 4 s and 2 s, 4 at once): 2 ahead is 1.5 s,
    # less than its call, so it keeps the job; 300 ahead is 225 s, and zai starts it now
    job = Job(prompt=CODE, max_tokens=200, priority="batch")  # cost first: no latency weight
    assert router(example_config, koala=2).decide(job).instance == "koala"
    spilled = router(example_config, koala=300).decide(job)
    assert spilled.instance == "zai"
    assert any(reason.startswith("Backlog: ") for reason in spilled.reasons)
    # 400 on every lane: koala is 300 s behind, the Claude lanes ~43 s, zai 50 s: within a
    # call of the shortest wait, so the cheaper zai takes it
    busy = {lane: 400 for lane in example_config.instances}
    assert router(example_config, **busy).decide(job).instance == "zai"


def test_a_deadline_sends_a_job_to_a_dearer_lane_only_when_the_cheap_one_would_miss_it(
    example_config: Config,
) -> None:
    lanes = router(example_config, koala=40, zai=400)  # koala: 30 s behind, zai: 50 s
    batch = {"prompt": CODE, "max_tokens": 200, "priority": "batch"}
    assert lanes.decide(Job(**batch, deadline_s=600)).instance == "koala"  # cheap, in time
    hurried = lanes.decide(Job(**batch, deadline_s=20))
    assert hurried.instance not in ("koala", "zai")
    assert hurried.estimated_latency_s <= 20
    assert any(reason.startswith("Deadline 20s: ") for reason in hurried.reasons)
    hopeless = lanes.decide(Job(**batch, deadline_s=0.5))
    assert hopeless.instance == "koala"
    assert any("no acceptable option" in reason for reason in hopeless.reasons)


def test_a_batch_job_gives_the_latency_weight_to_cost(example_config: Config) -> None:
    lanes = router(example_config)
    hurried = Weights(capability=0.2, cost=0.1, quality=0.1, latency=0.5, historical=0.1)
    job = {"prompt": "Summarise the history of the printing press in 300 words", "max_tokens": 600}
    interactive = lanes.decide(Job(**job), weights=hurried)
    batch = lanes.decide(Job(**job, priority="batch"), weights=hurried)
    assert batch.estimated_cost_usd < interactive.estimated_cost_usd
    assert batch.estimated_latency_s > interactive.estimated_latency_s
    assert patient((0.2, 0.1, 0.1, 0.5, 0.1)) == (0.2, 0.6, 0.1, 0.0, 0.1)


def test_the_jobs_a_lanes_buckets_admit_at_once_do_not_wait(example_config: Config) -> None:
    table = build_candidates(example_config)
    statuses = {name: LaneStatus() for name in example_config.instances}
    # koala: 4 at once over 3 s calls (4/3 a second) is both its burst and its rate here
    statuses["koala"] = LaneStatus(backlog=8, headroom=6.0)
    assert queue_waits(example_config, table, statuses, 10, 100)["koala"] == pytest.approx(
        8 / (4 / 3.0)
    )
    statuses["zai"] = LaneStatus(backlog=8, headroom=20.0, latency_s=0.01)  # 3,200/s at once
    assert queue_waits(example_config, table, statuses, 10, 100)["zai"] == pytest.approx(8 / 3_200)
    # a pool counts its members' headroom only when it knows every member's
    statuses.update(claude2=LaneStatus(backlog=100, headroom=100.0), claude3=LaneStatus())
    waits = queue_waits(example_config, table, statuses, 10, 100)
    claude_rate = 64 / ((12.0 + 6.0 + 2.5) / 3)  # concurrency binds before 1,000 a minute
    assert waits["claude2"] == pytest.approx(100 / claude_rate)
    assert waits["vital"] == pytest.approx(100 / (2 * claude_rate))


def test_a_models_measured_latency_on_a_lane_replaces_its_configured_one(
    example_config: Config,
) -> None:
    table = build_candidates(example_config)
    koala = LaneStatus(latency_s=0.3, model_latency_s={"llama3.1:8b": 0.2})
    measured = measured_latencies(table, {"koala": koala, "zai": LaneStatus()})
    assert measured == {("koala", "llama3.1:8b"): 0.2}  # qwen unmeasured: configured
    members = {"claude2": LaneStatus(model_latency_s={"claude-sonnet-4-5": 1.0}),
               "claude3": LaneStatus(model_latency_s={"claude-sonnet-4-5": 3.0})}  # fmt: skip
    assert measured_latencies(table, members)["vital", "claude-sonnet-4-5"] == 2.0
    lanes = Router(example_config, lane_state=StaticLaneState({"koala": koala}))
    job = {"prompt": CODE, "max_tokens": 200, "instance": "koala", "model": "llama3.1:8b"}
    fast = lanes.decide(Job(**job))
    guessed = router(example_config).decide(Job(**job))
    assert fast.estimated_latency_s == pytest.approx(guessed.estimated_latency_s * 0.2 / 2.0)
