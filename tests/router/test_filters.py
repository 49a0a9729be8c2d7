from __future__ import annotations

import pytest

from lanes.kernel.config import Config
from lanes.kernel.errors import JobError, NoRoute
from lanes.kernel.taxonomy import TaskType
from lanes.router.candidates import build_candidates
from lanes.router.engine import WAITS_REASON, Router
from lanes.router.filters import VITAL_ON_CHEAP, summarize, target_reasons
from lanes.router.job import Job
from lanes.router.lane_state import LaneStatus, StaticLaneState
from tests.router.fixed_classifier import fixed


def test_filters_vital_work_never_lands_on_zai(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed(vital=True))
    for strategy in ("best_for_task", "cost_optimized", "round_robin", "criticality"):
        for _ in range(4):
            decision = router.decide(Job(prompt="review auth"), strategy=strategy)
            assert decision.instance not in {"zai", "koala"}
            assert all(step.instance not in {"zai", "koala"} for step in decision.chain)
    assert decision.rejections["zai/glm-4.6"] == VITAL_ON_CHEAP
    assert "zai rejected: vital work never goes to a cheap lane" in decision.reasons


def test_filters_vital_work_skips_zai_even_when_it_is_cheapest(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed(vital=False))
    cheap = router.decide(Job(prompt="x"), strategy="cost_optimized")
    assert cheap.instance in {"zai", "koala"}
    vital = Router(example_config, classifier=fixed(vital=True))
    decision = vital.decide(Job(prompt="x"), strategy="cost_optimized")
    assert decision.instance in {"vital", "claude1"}


def test_filters_oversize_prompt_never_goes_to_a_small_window(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed(input_tokens=60_000, type=TaskType.TESTING))
    for strategy in ("best_for_task", "cost_optimized", "round_robin", "performance_optimized"):
        for _ in range(10):
            decision = router.decide(Job(prompt="x"), strategy=strategy)
            assert decision.model != "qwen2.5-coder:14b"
            assert all(step.model != "qwen2.5-coder:14b" for step in decision.chain)
    reason = decision.rejections["koala/qwen2.5-coder:14b"]
    assert "60,000 in" in reason and "32,768" in reason


def test_filters_prompt_over_every_window_is_a_job_error(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed(input_tokens=199_500))
    with pytest.raises(JobError, match=r"largest context window is 200,000 \(model claude-"):
        router.decide(Job(prompt="x", max_tokens=1000))


def test_filters_max_tokens_over_model_output_limit_rejects_it(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed())
    decision = router.decide(Job(prompt="x", max_tokens=20_000))
    assert "output limit" in decision.rejections["zai/glm-4.5-air"]
    assert "koala/llama3.1:8b" in decision.rejections
    assert decision.model not in {"glm-4.5-air", "llama3.1:8b", "qwen2.5-coder:14b"}


def test_filters_min_quality_constraint(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed())
    decision = router.decide(Job(prompt="x", constraints={"min_quality": 90}))
    assert decision.model in {"claude-opus-4-5", "claude-sonnet-4-5"}
    assert "below min_quality 90" in decision.rejections["claude1/claude-haiku-4-5"]


def test_filters_max_latency_constraint(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed())
    decision = router.decide(Job(prompt="x", constraints={"max_latency_s": 3.0}))
    assert "exceeds max_latency_s 3" in decision.rejections["claude1/claude-opus-4-5"]
    assert example_config.models[decision.model].latency_s <= 3.0


def test_filters_max_cost_constraint(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed(input_tokens=10_000, output_tokens=2000))
    decision = router.decide(
        Job(prompt="x", constraints={"max_cost_usd": 0.01}), strategy="performance_optimized"
    )
    assert "exceeds max_cost_usd" in decision.rejections["claude1/claude-opus-4-5"]
    assert decision.estimated_cost_usd <= 0.01


def test_filters_disabled_and_cooling_lanes_are_skipped(example_config: Config) -> None:
    state = StaticLaneState(
        {
            "claude1": LaneStatus(disabled_reason="401 bad key"),
            "koala": LaneStatus(cooldown_s=12),
            "zai": LaneStatus(health=0.1),
        }
    )
    router = Router(example_config, lane_state=state, classifier=fixed())
    decision = router.decide(Job(prompt="x"))
    assert decision.instance == "vital"
    assert decision.rejections["claude1/claude-opus-4-5"] == "disabled: 401 bad key"
    assert "cooling down for 12s" in decision.rejections["koala/llama3.1:8b"]
    assert "health 0.10" in decision.rejections["zai/glm-4.6"]


def test_filters_pool_survives_while_one_member_is_usable(example_config: Config) -> None:
    table = build_candidates(example_config)
    one_down = {n: LaneStatus() for n in table.instances} | {"claude2": LaneStatus(cooldown_s=30)}
    assert target_reasons(table, example_config, one_down, 0.25)["vital"] is None
    both_down = one_down | {"claude3": LaneStatus(disabled_reason="402 unpaid")}
    reason = target_reasons(table, example_config, both_down, 0.25)["vital"]
    assert reason is not None and "claude2" in reason and "claude3 disabled: 402" in reason


def test_filters_enabled_false_instance_is_rejected(example_config: Config) -> None:
    data = example_config.model_dump()
    data["instances"]["koala"]["enabled"] = False
    router = Router(Config.model_validate(data), classifier=fixed(type=TaskType.DOCUMENTATION))
    decision = router.decide(Job(prompt="x"))
    assert decision.instance != "koala"
    assert "enabled: false" in decision.rejections["koala/llama3.1:8b"]


def test_filters_no_route_lists_every_rejection(example_config: Config) -> None:
    down = StaticLaneState(
        {
            n: LaneStatus(disabled_reason="401 invalid key")
            for n in ("claude1", "claude2", "claude3")
        }
    )
    router = Router(example_config, lane_state=down, classifier=fixed(vital=True))
    with pytest.raises(NoRoute) as caught:
        router.decide(Job(prompt="x"))
    rejections = caught.value.rejections
    assert set(rejections) == {c.key for c in build_candidates(example_config).routable}
    assert rejections["zai/glm-4.6"] == VITAL_ON_CHEAP
    assert "disabled: 401" in rejections["claude1/claude-sonnet-4-5"]
    assert "zai/glm-4.6" in str(caught.value)


def test_filters_a_job_waits_for_a_cooling_lane_rather_than_fail(example_config: Config) -> None:
    # Vital work, every Claude account cooling down: the job is routed anyway and waits.
    cooling = {n: LaneStatus(cooldown_s=5) for n in ("claude1", "claude2", "claude3")}
    router = Router(example_config, lane_state=StaticLaneState(cooling),
                    classifier=fixed(vital=True))  # fmt: skip
    decision = router.decide(Job(prompt="x"))
    assert decision.instance in {"claude1", "vital"}
    assert WAITS_REASON in decision.reasons

    # A disabled account is never waited for; the cooling pool is.
    cooling["claude1"] = LaneStatus(disabled_reason="402 payment required")
    router = Router(example_config, lane_state=StaticLaneState(cooling),
                    classifier=fixed(vital=True))  # fmt: skip
    assert router.decide(Job(prompt="x")).instance == "vital"
    pinned = Job(prompt="x", instance="claude1")
    with pytest.raises(NoRoute, match="402"):
        router.decide(pinned)


def test_filters_summarize_groups_a_lane_with_one_reason(example_config: Config) -> None:
    table = build_candidates(example_config)
    lines = summarize(
        {"zai/glm-4.6": "r1", "zai/glm-4.5-air": "r1", "koala/qwen2.5-coder:14b": "too long"},
        table,
    )
    assert lines == ["zai rejected: r1", "koala/qwen2.5-coder:14b rejected: too long"]
