"""Vital work never has a cheap lane anywhere in its decision: not first, not in its chain, not
among the alternatives, not while cooldowns are waived, whatever the strategy; a pin asking for
one is refused. Work marked ``vital: false`` may still go to a cheap lane."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from lanes.kernel.config import Config
from lanes.kernel.errors import JobError, NoRoute
from lanes.kernel.taxonomy import Classification, StrategyName
from lanes.router.candidates import Candidate, build_candidates
from lanes.router.decision import Decision
from lanes.router.engine import WAITS_REASON, Router
from lanes.router.filters import VITAL_ON_CHEAP
from lanes.router.job import Job
from lanes.router.lane_state import LaneStatus, StaticLaneState
from tests.router.fixed_classifier import fixed

NON_CHEAP = ("claude1", "claude2", "claude3")
LANE_STATES: dict[str, dict[str, LaneStatus]] = {
    "healthy": {},
    "claude1 cooling": {"claude1": LaneStatus(cooldown_s=30)},
    "vital pool cooling": {n: LaneStatus(cooldown_s=30) for n in ("claude2", "claude3")},
    "every lane that is not cheap cooling": {n: LaneStatus(cooldown_s=30) for n in NON_CHEAP},
    "every lane cooling": {n: LaneStatus(cooldown_s=30) for n in (*NON_CHEAP, "zai", "koala")},
}
CHEAP_RULES = [
    {"pattern": ".", "instance": "zai"},
    {"pattern": ".", "model": "llama3.1:8b"},
    {"pattern": ".", "instance": "koala", "model": "qwen2.5-coder:14b"},
]


def pick_zai(
    job: Job, classification: Classification, candidates: Sequence[Candidate]
) -> tuple[str, str]:
    return ("zai", "glm-4.6")


def configured(config: Config, **routing: Any) -> Config:
    data = config.model_dump()
    data["routing"] = {**data["routing"], **routing}
    return Config.model_validate(data)


def cheap_targets(config: Config) -> frozenset[str]:
    return build_candidates(config).cheap_targets()


def assert_no_cheap_lane(decision: Decision, cheap: frozenset[str]) -> None:
    assert decision.instance not in cheap, decision.reasons
    assert not {step.instance for step in decision.chain} & cheap, decision.chain
    assert not {alt.instance for alt in decision.alternatives} & cheap, decision.alternatives


def assert_tier(decision: Decision, config: Config) -> None:
    """Every step of a vital decision is at least Sonnet-class (the default tier)."""
    floor = config.models["claude-sonnet-4-5"].quality
    qualities = [config.models[step.model].quality for step in decision.chain]
    assert min(qualities) >= floor, decision.chain


def sweep_router(config: Config, statuses: Mapping[str, LaneStatus], **kw: Any) -> Router:
    return Router(config, lane_state=StaticLaneState(dict(statuses)), **kw)


@pytest.mark.parametrize("state", list(LANE_STATES))
@pytest.mark.parametrize("complexity", ["simple", "medium", "critical"])
def test_vital_no_strategy_chain_or_waived_cooldown_leaks_a_cheap_lane(
    example_config: Config, state: str, complexity: str
) -> None:
    assert cheap_targets(example_config) == {"zai", "koala"}
    config = configured(example_config, custom_rules=CHEAP_RULES, hook=f"{__name__}:pick_zai")
    classifier = fixed(type="simple-task", complexity=complexity, vital=True)
    router = sweep_router(config, LANE_STATES[state], classifier=classifier)
    chains = [None, *config.fallback_chains]
    decided = 0
    for strategy, chain in itertools.product(list(StrategyName), chains):
        if strategy in (StrategyName.MANUAL, StrategyName.FALLBACK_CHAIN) and chain is None:
            continue  # manual needs a pin, fallback_chain a chain
        pins = {"instance": "claude1"} if strategy == StrategyName.MANUAL else {}
        for _ in range(4):  # round_robin turns
            try:
                decision = router.decide(Job(prompt="x", chain=chain, **pins), strategy=strategy)
            except NoRoute as exc:  # only a chain of cheap lanes and models below the tier
                assert strategy == StrategyName.FALLBACK_CHAIN and chain in ("local", "cheap")
                reasons = set(exc.rejections.values()) - {VITAL_ON_CHEAP}
                assert all("below the tier vital work needs" in r for r in reasons), exc
                break
            assert_no_cheap_lane(decision, {"zai", "koala"})
            assert_tier(decision, config)
            if state.startswith("every"):  # decided with every cooldown waived
                assert WAITS_REASON in decision.reasons
            decided += 1
    assert decided > 100


@pytest.mark.parametrize("default_chain", ["cheap", "local"])
def test_vital_default_chain_of_cheap_lanes_is_dropped(
    example_config: Config, default_chain: str
) -> None:
    config = configured(example_config, default_chain=default_chain)
    router = Router(config, classifier=fixed(vital=True))
    for strategy in ("best_for_task", "cost_optimized", "criticality", "round_robin"):
        decision = router.decide(Job(prompt="x"), strategy=strategy)
        assert_no_cheap_lane(decision, {"zai", "koala"})
        assert decision.rejections["zai/glm-4.6"] == VITAL_ON_CHEAP


def test_vital_cheap_chain_steps_are_dropped_while_cooldowns_are_waived(
    example_config: Config,
) -> None:
    cooling = StaticLaneState({n: LaneStatus(cooldown_s=10) for n in NON_CHEAP})
    config = configured(example_config, vital_min_model=None)  # no tier: Haiku may serve
    router = Router(config, lane_state=cooling, classifier=fixed(vital=True))
    decision = router.decide(Job(prompt="x", chain="cheap"), strategy="fallback_chain")
    assert [(s.instance, s.model) for s in decision.chain] == [("vital", "claude-haiku-4-5")]
    assert WAITS_REASON in decision.reasons
    assert decision.rejections["koala/qwen2.5-coder:14b"] == VITAL_ON_CHEAP


@pytest.mark.parametrize(
    ("pins", "lane"),
    [
        ({"instance": "zai"}, "cheap lane zai"),
        ({"instance": "koala"}, "cheap lane koala"),
        ({"instance": "zai", "model": "glm-4.5-air"}, "cheap lane zai"),
        ({"model": "glm-4.6"}, "model glm-4.6, which only cheap lane zai offers"),
        ({"model": "llama3.1:8b"}, "model llama3.1:8b, which only cheap lane koala offers"),
    ],
)
@pytest.mark.parametrize("strategy", [None, "best_for_task", "round_robin", "fallback_chain"])
def test_vital_pin_to_a_cheap_lane_is_refused_naming_lane_reason_and_fix(
    example_config: Config, pins: dict[str, str], lane: str, strategy: str | None
) -> None:
    classifier = fixed(vital=True, vital_reason="security: 'injection'")
    router = Router(example_config, classifier=classifier)
    with pytest.raises(JobError) as caught:
        router.decide(Job(prompt="x", chain="vital", **pins), strategy=strategy)
    message = str(caught.value)
    assert f"the job pins {lane}, but the job is vital (security: 'injection')" in message
    assert "pin a lane without the 'cheap' tag" in message
    assert '"vital": false on the job (--not-vital on the command line)' in message


def test_vital_pin_is_refused_before_lane_state_is_read(example_config: Config) -> None:
    class Unreadable:
        def statuses(self, names: list[str]) -> dict[str, LaneStatus]:
            raise AssertionError("lane state read for a job that must be refused")

    router = Router(example_config, lane_state=Unreadable(), classifier=fixed(vital=True))
    with pytest.raises(JobError, match="the classifier judged it vital"):
        router.decide(Job(prompt="x", instance="koala"))


def test_vital_model_pin_offered_by_cheap_and_other_lanes_avoids_the_cheap_one(
    example_config: Config,
) -> None:
    data = example_config.model_dump()
    data["instances"]["zai"]["models"] = ["glm-4.6", "claude-haiku-4-5"]
    data["instances"]["zai"]["price_multiplier"] = 0.1  # the cheapest haiku by far
    config = Config.model_validate(data)
    router = Router(config, classifier=fixed(vital=True))
    decision = router.decide(Job(prompt="x", model="claude-haiku-4-5"))
    assert decision.instance in {"vital", "claude1"}
    assert decision.rejections["zai/claude-haiku-4-5"] == VITAL_ON_CHEAP
    plain = Router(config, classifier=fixed()).decide(
        Job(prompt="x", model="claude-haiku-4-5"), strategy="cost_optimized"
    )
    assert plain.instance == "zai"


@pytest.mark.parametrize(
    "pins", [{"instance": "zai"}, {"instance": "koala"}, {"model": "glm-4.5-air"}]
)
def test_vital_false_job_can_still_be_pinned_to_a_cheap_lane(
    example_config: Config, pins: dict[str, str]
) -> None:
    router = Router(example_config, classifier=fixed(vital=True))  # the text looks vital
    decision = router.decide(Job(prompt="x", vital=False, **pins))
    assert decision.instance in {"zai", "koala"}
    assert decision.classification is not None and not decision.classification.vital
    assert all(step.instance == decision.instance for step in decision.chain)


def test_vital_false_with_the_real_classifier(example_config: Config) -> None:
    router = Router(example_config)
    text = "Review this diff for SQL injection and leaked secrets in the payment handler"
    assert router.decide(Job(prompt=text, instance="zai", vital=False)).instance == "zai"
    with pytest.raises(JobError, match="pins cheap lane zai, but the job is vital"):
        router.decide(Job(prompt=text, instance="zai", vital=True))


def test_vital_custom_rule_pinning_a_cheap_lane_is_skipped(example_config: Config) -> None:
    rules = [*CHEAP_RULES, {"pattern": "(?i)auth", "instance": "claude1"}]
    config = configured(example_config, strategy="custom_rules", custom_rules=rules)
    vital = Router(config, classifier=fixed(vital=True)).decide(Job(prompt="check auth"))
    assert (vital.instance, vital.strategy) == ("claude1", "custom_rules")
    assert (
        "Custom rule 0 ('.') matched but pins cheap lane zai: vital work never goes to a cheap lane"
        in vital.reasons
    )
    assert "Custom rule 3 ('(?i)auth') matched the prompt" in vital.reasons
    only_cheap = Router(config, classifier=fixed(vital=True)).decide(Job(prompt="other"))
    assert_no_cheap_lane(only_cheap, {"zai", "koala"})
    assert "No usable custom rule; used best_for_task" in only_cheap.reasons
    not_vital = Router(config, classifier=fixed()).decide(Job(prompt="check auth"))
    assert not_vital.instance == "zai"


def test_vital_hook_choosing_a_cheap_lane_is_overruled(example_config: Config) -> None:
    config = configured(example_config, strategy="hook", hook=f"{__name__}:pick_zai")
    vital = Router(config, classifier=fixed(vital=True)).decide(Job(prompt="x"))
    assert_no_cheap_lane(vital, {"zai", "koala"})
    assert any(
        reason.startswith(f"The routing hook {__name__}:pick_zai chose zai/glm-4.6, a cheap lane")
        for reason in vital.reasons
    )
    assert Router(config, classifier=fixed()).decide(Job(prompt="x")).instance == "zai"


def test_vital_hook_is_only_offered_lanes_that_are_not_cheap(example_config: Config) -> None:
    config = configured(
        example_config, strategy="hook", hook="tests.router.test_strategies:pick_last_candidate"
    )
    for _ in range(3):
        decision = Router(config, classifier=fixed(vital=True)).decide(Job(prompt="x"))
        assert_no_cheap_lane(decision, {"zai", "koala"})


def test_vital_cache_never_hands_a_cheap_decision_to_vital_work(example_config: Config) -> None:
    config = configured(example_config, cache_ttl_s=60)
    router = Router(config, classifier=fixed(vital=True))
    cheap = router.decide(Job(prompt="x", vital=False), strategy="cost_optimized")
    assert cheap.instance in {"zai", "koala"}
    vital = router.decide(Job(prompt="x"), strategy="cost_optimized")
    assert_no_cheap_lane(vital, {"zai", "koala"})
    assert router.decide(Job(prompt="x", instance="zai", vital=False)).instance == "zai"
    with pytest.raises(JobError, match="pins cheap lane zai"):
        router.decide(Job(prompt="x", instance="zai"))
