from __future__ import annotations

from typing import Any

import pytest

from lanes.bench.corpus import build_corpus
from lanes.kernel.config import Config
from lanes.kernel.config.models import Weights
from lanes.kernel.errors import JobError
from lanes.kernel.taxonomy import Classification, TaskType
from lanes.router.candidates import build_candidates
from lanes.router.engine import Router, confidence
from lanes.router.job import Job
from lanes.router.lane_state import LaneStatus, StaticLaneState
from tests.router.fixed_classifier import fixed


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def cached_router(config: Config, **kw: Any) -> Router:
    data = config.model_dump()
    data["routing"]["cache_ttl_s"] = 60
    return Router(Config.model_validate(data), **kw)


def test_engine_pool_collapses_into_one_lane(example_config: Config) -> None:
    table = build_candidates(example_config)
    lanes = [c.target for c in table.routable]
    assert list(dict.fromkeys(lanes)) == ["claude1", "vital", "zai", "koala"]
    vital = table.targets["vital"]
    assert vital.members == ("claude2", "claude3")
    assert set(vital.models) == {"claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"}
    assert vital.tags == {"vital"}


def test_engine_vital_work_goes_to_the_vital_pool(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed(vital=True, complexity="complex"))
    decision = router.decide(Job(prompt="review the auth flow"))
    assert (decision.instance, decision.pool) == ("vital", "vital")
    assert decision.chain[0].instance == "vital"


def test_engine_pool_members_intersect_models_and_union_tags(example_config: Config) -> None:
    data = example_config.model_dump()
    data["instances"]["claude3"]["models"] = ["claude-sonnet-4-5"]
    data["instances"]["claude3"]["tags"] = ["vital", "eu"]
    data["fallback_chains"] = {}  # the example's chains name vital models claude3 drops here
    table = build_candidates(Config.model_validate(data))
    assert table.targets["vital"].models == ("claude-sonnet-4-5",)
    assert table.targets["vital"].tags == {"vital", "eu"}


def test_engine_same_job_same_decision(example_config: Config) -> None:
    job = Job(id="same", prompt="Refactor the billing module to remove duplication")
    first = Router(example_config).decide(job)
    assert Router(example_config).decide(job) == first
    assert Router(example_config).decide(job) == first


def test_engine_decisions_explain_themselves(example_config: Config) -> None:
    router = Router(example_config)
    for job in build_corpus(size=60):
        decision = router.decide(job)
        assert decision.classification is not None
        task = decision.classification.type.value
        assert decision.reasons
        assert any(task in reason for reason in decision.reasons)
        assert 0 <= decision.confidence <= 100
        assert len(decision.alternatives) <= 5


def test_engine_alternatives_exclude_the_choice(example_config: Config) -> None:
    decision = Router(example_config, classifier=fixed()).decide(Job(prompt="x"))
    chosen = (decision.instance, decision.model)
    assert len(decision.alternatives) == 5
    assert chosen not in {(a.instance, a.model) for a in decision.alternatives}


def test_engine_prompt_over_the_largest_window_is_a_job_error(example_config: Config) -> None:
    router = Router(example_config)
    with pytest.raises(JobError, match=r"the largest context window is 200,000"):
        router.decide(Job(prompt="word " * 170_000, max_tokens=4096))


def test_engine_weights_override_per_call(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed(complexity="simple"))
    quality_only = Weights(capability=0, cost=0, quality=1, latency=0, historical=0)
    decision = router.decide(Job(prompt="x"), weights=quality_only)
    assert decision.model == "claude-opus-4-5"
    assert router.decide(Job(prompt="x")).model != "claude-opus-4-5"


def test_engine_confidence_grows_with_margin_and_classifier_certainty() -> None:
    assert confidence(80, None, 1.0) == 100.0
    assert confidence(80, 80, 1.0) == 50.0
    assert confidence(80, 75, 1.0) < confidence(80, 60, 1.0)
    assert confidence(80, 60, 0.2) < confidence(80, 60, 0.9)


def test_engine_classify_uses_the_given_classifier(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed(type="creative"))
    assert router.classify(Job(prompt="x")).type == TaskType.CREATIVE


def test_engine_cache_hit_returns_the_same_decision(example_config: Config) -> None:
    calls: list[str] = []
    inner = fixed()

    def counting(job: Job) -> Classification:
        calls.append(job.id)
        return inner(job)

    router = cached_router(example_config, classifier=counting)
    first = router.decide(Job(prompt="Fix  the BUG\nin parse()"))
    second = router.decide(Job(prompt="fix the bug in parse()"))
    assert second is first
    assert len(calls) == 1
    other = router.decide(Job(prompt="fix the bug in parse()", max_tokens=99))
    assert other is not first
    for hurry in ({"priority": "batch"}, {"deadline_s": 30}):  # they rank differently
        assert router.decide(Job(prompt="fix the bug in parse()", **hurry)) is not first


def test_engine_cache_expires_after_its_ttl(example_config: Config) -> None:
    clock = Clock()
    router = cached_router(example_config, classifier=fixed(), clock=clock)
    first = router.decide(Job(prompt="x"))
    clock.now_s += 59
    assert router.decide(Job(prompt="x")) is first
    clock.now_s += 2
    assert router.decide(Job(prompt="x")) is not first


def test_engine_cache_is_bypassed_when_the_lane_becomes_unusable(example_config: Config) -> None:
    state = StaticLaneState()
    router = cached_router(example_config, classifier=fixed(), lane_state=state)
    first = router.decide(Job(prompt="x"))
    state.states[first.instance] = LaneStatus(cooldown_s=30)
    second = router.decide(Job(prompt="x"))
    assert second.instance != first.instance
    assert router.decide(Job(prompt="x")) is second


def test_engine_cache_never_holds_round_robin(example_config: Config) -> None:
    router = cached_router(example_config, classifier=fixed())
    picks = {router.decide(Job(prompt="x"), strategy="round_robin").model for _ in range(4)}
    assert len(picks) > 1
