from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from lanes.kernel.config import Config
from lanes.kernel.errors import ConfigError, JobError
from lanes.kernel.taxonomy import Classification, StrategyName
from lanes.router.candidates import Candidate
from lanes.router.engine import Router
from lanes.router.job import Job
from lanes.router.lane_state import LaneStatus, StaticLaneState
from lanes.router.strategies import REGISTRY, get_strategy
from tests.router.fixed_classifier import fixed


def with_routing(config: Config, **routing: Any) -> Config:
    data = config.model_dump()
    data["routing"] = {**data["routing"], **routing}
    return Config.model_validate(data)


class Turns:
    """A rotation counter the test controls."""

    def __init__(self, start: int = 0) -> None:
        self.value = start
        self.keys: list[str] = []

    def next(self, key: str) -> int:
        self.keys.append(key)
        self.value += 1
        return self.value - 1


def pick_haiku_on_claude1(
    job: Job, classification: Classification, candidates: Sequence[Candidate]
) -> tuple[str, str]:
    return ("claude1", "claude-haiku-4-5")


def pick_last_candidate(
    job: Job, classification: Classification, candidates: Sequence[Candidate]
) -> Candidate:
    return candidates[-1]


def no_opinion(job: Job, classification: Classification, candidates: Sequence[Candidate]) -> None:
    return None


def pick_unknown(
    job: Job, classification: Classification, candidates: Sequence[Candidate]
) -> tuple[str, str]:
    return ("koala", "claude-opus-4-5")


def test_strategies_registry_covers_every_configurable_name() -> None:
    assert set(REGISTRY) == set(StrategyName)


def test_strategies_unknown_name_is_a_job_error_listing_valid_ones(example_config: Config) -> None:
    with pytest.raises(JobError, match=r"unknown strategy 'fastest'.*best_for_task.*hook"):
        get_strategy("fastest")
    router = Router(example_config, classifier=fixed())
    with pytest.raises(JobError, match="cost_optimized"):
        router.decide(Job(prompt="x", strategy="nope"))


def test_strategies_best_for_task_complex_work_gets_a_strong_model(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed(type="architecture", complexity="complex"))
    decision = router.decide(Job(prompt="x"))
    assert decision.strategy == "best_for_task"
    assert decision.model in {"claude-opus-4-5", "claude-sonnet-4-5"}
    assert any("architecture" in reason for reason in decision.reasons)


def test_strategies_best_for_task_simple_work_goes_cheap(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed(type="simple-task", complexity="simple"))
    decision = router.decide(Job(prompt="x"))
    assert decision.instance in {"koala", "zai"}


def test_strategies_cost_optimized_takes_the_cheapest_meeting_the_floor(
    example_config: Config,
) -> None:
    router = Router(example_config, classifier=fixed(complexity="complex"))
    decision = router.decide(Job(prompt="x"), strategy="cost_optimized")
    assert (decision.instance, decision.model) == ("zai", "glm-4.6")
    assert "Cheapest candidate meeting quality 80 (the floor for complex work)" in decision.reasons
    medium = Router(example_config, classifier=fixed()).decide(
        Job(prompt="x"), strategy="cost_optimized"
    )
    assert medium.estimated_cost_usd == 0.0


def test_strategies_performance_optimized_ignores_cost(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed())
    decision = router.decide(Job(prompt="x"), strategy="performance_optimized")
    assert (decision.instance, decision.model) == ("claude1", "claude-opus-4-5")
    assert any("cost ignored" in reason for reason in decision.reasons)


@pytest.mark.parametrize(
    ("complexity", "expected", "floor"),
    [
        ("simple", ("koala", "qwen2.5-coder:14b"), 60),
        ("medium", ("zai", "glm-4.5-air"), 70),
        ("complex", ("zai", "glm-4.6"), 80),
        # Critical is stakes, not difficulty: at difficulty 0.5 the bar is the medium one.
        ("critical", ("zai", "glm-4.5-air"), 70),
    ],
)
def test_strategies_criticality_non_vital_work_takes_the_cheapest_strong_enough(
    example_config: Config, complexity: str, expected: tuple[str, str], floor: int
) -> None:
    router = Router(example_config, classifier=fixed(complexity=complexity))
    decision = router.decide(Job(prompt="x"), strategy="criticality")
    assert (decision.instance, decision.model) == expected
    assert decision.reasons[1] == (
        "Criticality: non-vital work goes to the cheapest lane reaching capability "
        f"{floor} for code-review"
    )


@pytest.mark.parametrize("complexity", ["simple", "medium", "complex"])
def test_strategies_criticality_vital_work_takes_sonnet_on_the_vital_pool(
    example_config: Config, complexity: str
) -> None:
    clf = fixed(complexity=complexity, vital=True, vital_reason="security: 'injection'")
    decision = Router(example_config, classifier=clf).decide(
        Job(prompt="x"), strategy="criticality"
    )
    assert (decision.instance, decision.pool, decision.model) == (
        "vital",
        "vital",
        "claude-sonnet-4-5",
    )
    assert decision.reasons[1] == (
        "Criticality: vital work (security: 'injection') goes to a vital lane: cheapest model "
        "reaching capability 90 for code-review"
    )
    assert [(s.instance, s.model) for s in decision.chain] == [
        ("vital", "claude-sonnet-4-5"),
        ("claude1", "claude-sonnet-4-5"),
    ]


def test_strategies_criticality_vital_work_takes_opus_where_sonnet_falls_short(
    example_config: Config,
) -> None:
    router = Router(example_config, classifier=fixed(type="coordination", vital=True))
    decision = router.decide(Job(prompt="x"), strategy="criticality")
    assert (decision.instance, decision.model) == ("vital", "claude-opus-4-5")  # sonnet: 88


def test_strategies_criticality_critical_vital_work_takes_the_highest_quality(
    example_config: Config,
) -> None:
    router = Router(example_config, classifier=fixed(complexity="critical", vital=True))
    decision = router.decide(Job(prompt="x"), strategy="criticality")
    assert (decision.instance, decision.pool, decision.model) == (
        "vital",
        "vital",
        "claude-opus-4-5",
    )
    assert decision.reasons[1] == (
        "Criticality: vital work goes to a vital lane: the highest-quality model, as the work "
        "is critical"
    )


def test_strategies_criticality_vital_work_without_a_vital_lane_avoids_cheap_ones(
    example_config: Config,
) -> None:
    down = StaticLaneState({n: LaneStatus(disabled_reason="401") for n in ("claude2", "claude3")})
    router = Router(example_config, lane_state=down, classifier=fixed(vital=True))
    decision = router.decide(Job(prompt="x"), strategy="criticality")
    assert (decision.instance, decision.model) == ("claude1", "claude-sonnet-4-5")
    assert {s.instance for s in decision.chain} == {"claude1"}
    assert "has no usable vital lane among its options" in decision.reasons[1]


def test_strategies_criticality_says_when_nothing_is_strong_enough(
    example_config: Config,
) -> None:
    router = Router(example_config, classifier=fixed(complexity="critical"))
    decision = router.decide(Job(prompt="x", instance="koala"), strategy="criticality")
    assert decision.instance == "koala"
    assert decision.reasons[1] == (
        "Criticality: non-vital work, but no candidate reaches capability 70 for code-review: "
        "took the best score"
    )


def test_strategies_round_robin_rotates_with_the_injected_counter(example_config: Config) -> None:
    turns = Turns()
    router = Router(example_config, classifier=fixed(), counter=turns)
    picks = [router.decide(Job(prompt="x"), strategy="round_robin") for _ in range(10)]
    pairs = [(d.instance, d.model) for d in picks]
    assert len(set(pairs)) == 10
    assert turns.keys == ["round_robin"] * 10
    again = router.decide(Job(prompt="x"), strategy="round_robin")
    assert (again.instance, again.model) == pairs[0]


def test_strategies_fallback_chain_takes_the_first_usable_step(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed())
    decision = router.decide(Job(prompt="x", chain="cheap"), strategy="fallback_chain")
    assert decision.instance == "zai"
    assert [s.instance for s in decision.chain] == ["zai", "koala", "vital"]
    cooling = StaticLaneState({"zai": LaneStatus(cooldown_s=20)})
    router = Router(example_config, classifier=fixed(), lane_state=cooling)
    decision = router.decide(Job(prompt="x", chain="cheap"), strategy="fallback_chain")
    assert decision.instance == "koala"
    assert "zai/glm-4.6" in decision.rejections


def test_strategies_fallback_chain_without_a_chain_is_a_job_error(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed())
    with pytest.raises(JobError, match=r"needs a chain.*vital, premium, cheap, local"):
        router.decide(Job(prompt="x"), strategy="fallback_chain")


def test_strategies_manual_model_pin_takes_the_best_lane_offering_it(
    example_config: Config,
) -> None:
    router = Router(example_config, classifier=fixed())
    decision = router.decide(Job(prompt="x", model="claude-opus-4-5"))
    assert decision.strategy == "manual"
    assert (decision.instance, decision.model) == ("claude1", "claude-opus-4-5")
    vital = Router(example_config, classifier=fixed(vital=True))
    assert vital.decide(Job(prompt="x", model="claude-opus-4-5")).instance == "vital"


def test_strategies_manual_lane_pin_takes_the_best_model_on_it(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed(type="testing"))
    decision = router.decide(Job(prompt="x", instance="zai"))
    assert decision.instance == "zai"
    assert decision.model in {"glm-4.6", "glm-4.5-air"}
    assert {s.instance for s in decision.chain} == {"zai"}


def test_strategies_manual_both_pins_route_exactly(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed())
    decision = router.decide(Job(prompt="x", instance="claude2", model="claude-haiku-4-5"))
    assert (decision.instance, decision.model, decision.pool) == (
        "claude2",
        "claude-haiku-4-5",
        None,
    )


@pytest.mark.parametrize(
    ("pins", "message"),
    [
        (
            {"instance": "claude9"},
            "unknown instance or pool 'claude9'; choose one of: claude1, vital",
        ),
        ({"model": "gpt-9"}, "unknown model 'gpt-9'; choose one of: claude-opus-4-5"),
        (
            {"instance": "koala", "model": "claude-opus-4-5"},
            "'koala' does not offer model 'claude-opus-4-5'; it offers: qwen2.5-coder:14b",
        ),
    ],
)
def test_strategies_manual_bad_pin_is_a_job_error(
    example_config: Config, pins: dict[str, str], message: str
) -> None:
    router = Router(example_config, classifier=fixed())
    with pytest.raises(JobError, match=message.replace("(", r"\(")):
        router.decide(Job(prompt="x", **pins))


def test_strategies_manual_without_pins_is_a_job_error(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed())
    with pytest.raises(JobError, match="needs a pin"):
        router.decide(Job(prompt="x"), strategy="manual")


def test_strategies_custom_rule_regex_pins_the_lane(example_config: Config) -> None:
    rules = [{"pattern": r"(?i)\bsecurity\b", "instance": "vital"}]
    config = with_routing(example_config, strategy="custom_rules", custom_rules=rules)
    router = Router(config, classifier=fixed())
    decision = router.decide(Job(prompt="Check the SECURITY of this login form"))
    assert decision.instance == "vital"
    assert decision.reasons[1].startswith("Custom rule 0")
    other = router.decide(Job(prompt="Write a haiku"))
    assert "No custom rule matched the prompt; used best_for_task" in other.reasons


def test_strategies_custom_rule_cannot_hang_routing(example_config: Config) -> None:
    rules = [{"pattern": r"(a+)+$", "model": "glm-4.5-air"}]  # catastrophic for Python's re
    router = Router(with_routing(example_config, custom_rules=rules), classifier=fixed())
    decision = router.decide(Job(prompt="a" * 40 + "!"), strategy="custom_rules")
    assert "No custom rule matched the prompt; used best_for_task" in decision.reasons
    pinned = router.decide(Job(prompt="a" * 40), strategy="custom_rules")
    assert pinned.model == "glm-4.5-air"


def test_strategies_custom_rule_can_pin_a_model(example_config: Config) -> None:
    rules = [{"pattern": "^translate", "model": "glm-4.5-air"}]
    router = Router(with_routing(example_config, custom_rules=rules), classifier=fixed())
    decision = router.decide(Job(prompt="translate this"), strategy="custom_rules")
    assert (decision.instance, decision.model) == ("zai", "glm-4.5-air")


def test_strategies_hook_returning_a_pair(example_config: Config) -> None:
    config = with_routing(example_config, strategy="hook", hook=f"{__name__}:pick_haiku_on_claude1")
    decision = Router(config, classifier=fixed()).decide(Job(prompt="x"))
    assert (decision.instance, decision.model) == ("claude1", "claude-haiku-4-5")
    assert any("pick_haiku_on_claude1" in reason for reason in decision.reasons)


def test_strategies_hook_returning_a_candidate(example_config: Config) -> None:
    config = with_routing(example_config, hook=f"{__name__}:pick_last_candidate")
    router = Router(config, classifier=fixed())
    best = router.decide(Job(prompt="x"))
    hooked = router.decide(Job(prompt="x"), strategy="hook")
    assert hooked.strategy == "hook"
    assert (hooked.instance, hooked.model) != (best.instance, best.model)


def test_strategies_hook_with_no_opinion_falls_back(example_config: Config) -> None:
    config = with_routing(example_config, hook=f"{__name__}:no_opinion")
    decision = Router(config, classifier=fixed()).decide(Job(prompt="x"), strategy="hook")
    assert "The routing hook had no opinion; used best_for_task" in decision.reasons


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        ("no_such_module_here:fn", "cannot import 'no_such_module_here'"),
        (f"{__name__}:missing_function", "has no function 'missing_function'"),
        (f"{__name__}:pick_unknown", "not a surviving candidate"),
        (None, "needs a hook function"),
    ],
)
def test_strategies_hook_errors_name_routing_hook(
    example_config: Config, hook: str | None, message: str
) -> None:
    router = Router(with_routing(example_config, hook=hook), classifier=fixed())
    with pytest.raises(ConfigError, match=message) as caught:
        router.decide(Job(prompt="x"), strategy="hook")
    assert caught.value.key == "routing.hook"


def test_strategies_choice_order_job_then_argument_then_config(example_config: Config) -> None:
    config = with_routing(example_config, strategy="cost_optimized")
    router = Router(config, classifier=fixed())
    assert router.strategy_for(Job(prompt="x")) == "cost_optimized"
    assert router.strategy_for(Job(prompt="x"), "round_robin") == "round_robin"
    assert router.strategy_for(Job(prompt="x", strategy="criticality"), "round_robin") == (
        "criticality"
    )
    assert router.strategy_for(Job(prompt="x", model="glm-4.6")) == "manual"
    assert router.strategy_for(Job(prompt="x", model="glm-4.6"), "cost_optimized") == (
        "cost_optimized"
    )
