"""The vital tier (``routing.vital_min_model``): vital work starts on the vital pool's
Sonnet-class model in every strategy and never runs below it unless the job pins its model."""

from __future__ import annotations

from typing import Any

import pytest

from lanes.kernel.config import Config
from lanes.kernel.errors import ConfigError
from lanes.kernel.taxonomy import StrategyName
from lanes.router.engine import Router
from lanes.router.filters import VITAL_ON_CHEAP, vital_refusal, vital_tier
from lanes.router.job import Job
from tests.router.fixed_classifier import fixed

SONNET, HAIKU = "claude-sonnet-4-5", "claude-haiku-4-5"
UNPINNED = [s for s in StrategyName if s not in (StrategyName.MANUAL, StrategyName.HOOK)]


def routing(config: Config, **changes: Any) -> Config:
    data = config.model_dump()
    data["routing"] = {**data["routing"], **changes}
    return Config.model_validate(data)


@pytest.mark.parametrize("strategy", UNPINNED)
@pytest.mark.parametrize("complexity", ["simple", "medium"])
def test_vital_work_starts_on_the_vital_pool_at_sonnet_class_in_every_strategy(
    example_config: Config, strategy: str, complexity: str
) -> None:
    router = Router(example_config, classifier=fixed(vital=True, complexity=complexity))
    for _ in range(3):  # round_robin turns
        decision = router.decide(Job(prompt="x", chain="vital"), strategy=strategy)
        assert decision.instance == "vital", (strategy, decision.reasons)
        qualities = [example_config.models[step.model].quality for step in decision.chain]
        assert min(qualities) >= example_config.models[SONNET].quality, decision.chain
        if strategy != StrategyName.FALLBACK_CHAIN:  # a chain considers its own steps only
            assert "below the tier" in decision.rejections["vital/claude-haiku-4-5"]


def test_not_vital_work_still_gets_haiku(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed(vital=False, complexity="simple"))
    decision = router.decide(Job(prompt="x"), strategy="cost_optimized")
    assert decision.model != SONNET
    assert "vital/claude-haiku-4-5" not in decision.rejections


def test_a_pinned_model_below_the_tier_wins_with_a_warning(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed(vital=True))
    decision = router.decide(Job(prompt="x", model=HAIKU))
    assert decision.model == HAIKU and decision.instance != "zai"
    [warning] = [r for r in decision.reasons if r.startswith("Warning:")]
    assert f"pins model {HAIKU} for vital work" in warning and "routing.vital_min_model" in warning
    pinned_lane = router.decide(Job(prompt="x", instance="claude1"))  # a lane pin keeps the tier
    assert pinned_lane.model != HAIKU and not any(r.startswith("Warning:") for r in
                                                  pinned_lane.reasons)  # fmt: skip


def test_the_tier_is_a_config_key(example_config: Config) -> None:
    assert vital_tier(example_config) is not None
    free = Router(routing(example_config, vital_min_model=None), classifier=fixed(vital=True))
    decision = free.decide(Job(prompt="x", chain="cheap"), strategy="fallback_chain")
    assert decision.model == HAIKU  # no floor: the chain's Haiku step serves vital work
    opus = routing(example_config, vital_min_model="claude-opus-4-5")
    top = Router(opus, classifier=fixed(vital=True)).decide(Job(prompt="x"))
    assert {step.model for step in top.chain} == {"claude-opus-4-5"}


def test_an_unknown_tier_model_named_in_the_config_is_refused(example_config: Config) -> None:
    with pytest.raises((ConfigError, ValueError), match=r"routing\.vital_min_model"):
        routing(example_config, vital_min_model="claude-sonnet-9")


def test_a_config_without_the_default_tier_model_has_no_floor(example_config: Config) -> None:
    data = example_config.model_dump()
    data["routing"].pop("vital_min_model")
    data["models"]["sonnet-local"] = data["models"].pop(SONNET)
    for inst in data["instances"].values():
        inst["models"] = [("sonnet-local" if m == SONNET else m) for m in inst["models"]]
    for steps in data["fallback_chains"].values():
        for step in steps:
            step["model"] = "sonnet-local" if step.get("model") == SONNET else step.get("model")
    for reviewer in data["review"]["reviewers"]:
        if reviewer.get("model") == SONNET:
            reviewer["model"] = "sonnet-local"
    assert vital_tier(Config.model_validate(data)) is None


def test_vital_refusal_names_cheap_lanes_models_below_the_tier_and_unknown_names(
    example_config: Config,
) -> None:
    assert vital_refusal(example_config, "zai", "glm-4.6") == VITAL_ON_CHEAP
    assert "below the tier" in str(vital_refusal(example_config, "claude2", HAIKU))
    assert vital_refusal(example_config, "claude2", SONNET) is None
    assert (
        vital_refusal(example_config, "gone", SONNET)
        == "gone/claude-sonnet-4-5 is not in the config"
    )
