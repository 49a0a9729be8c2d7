"""Work pinned to a local lane stays on local lanes: every strategy, every kind of chain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from lanes.kernel.config import Config
from lanes.kernel.errors import ConfigError, NoRoute
from lanes.kernel.taxonomy import Classification, StrategyName
from lanes.router.candidates import Candidate
from lanes.router.decision import Decision
from lanes.router.engine import Router
from lanes.router.filters import NOT_LOCAL, local_targets
from lanes.router.job import Job
from lanes.router.lane_state import LaneStatus, StaticLaneState
from lanes.router.strategies import REGISTRY
from tests.router.fixed_classifier import fixed

LOCAL = {"koala"}
"""The local lanes of the example config."""
CHAINS = (None, "local", "cheap", "vital")


def pick_last_candidate(
    job: Job, classification: Classification, candidates: Sequence[Candidate]
) -> Candidate:
    return candidates[-1]


def pick_zai(job: Job, classification: Classification, candidates: Sequence[Candidate]) -> Any:
    return ("zai", "glm-4.6")


def configured(config: Config, default_chain: str | None, **routing: Any) -> Config:
    data = config.model_dump()
    data["routing"] = {
        **data["routing"],
        "default_chain": default_chain,
        "hook": f"{__name__}:pick_last_candidate",
        "custom_rules": [{"pattern": "(?i)notes", "instance": "zai"}],
        **routing,
    }
    return Config.model_validate(data)


def steps(decision: Decision) -> list[tuple[str, str]]:
    return [(step.instance, step.model) for step in decision.chain]


def test_local_only_local_targets_are_local_instances_and_all_local_pools(
    example_config: Config,
) -> None:
    assert local_targets(Router(example_config).table, example_config) == frozenset(LOCAL)
    data = example_config.model_dump()
    data["pools"]["mixed"] = ["zai", "koala"]
    mixed = Config.model_validate(data)
    targets = local_targets(Router(mixed).table, mixed)
    assert "koala" in targets and "mixed" not in targets and "zai" not in targets


@pytest.mark.parametrize("default_chain", CHAINS)
@pytest.mark.parametrize("strategy", sorted(REGISTRY))
def test_local_only_every_strategy_keeps_a_local_pin_on_local_lanes(
    example_config: Config, strategy: str, default_chain: str | None
) -> None:
    router = Router(configured(example_config, default_chain), classifier=fixed())
    chain = "local" if strategy == StrategyName.FALLBACK_CHAIN and default_chain is None else None
    job = Job(prompt="Summarise these notes", instance="koala", strategy=strategy, chain=chain)
    if strategy == StrategyName.FALLBACK_CHAIN and default_chain == "vital":
        with pytest.raises(NoRoute) as refused:
            router.decide(job)
        assert set(refused.value.rejections.values()) == {NOT_LOCAL}
        return
    decision = router.decide(job)
    assert decision.instance in LOCAL
    assert {target for target, _ in steps(decision)} <= LOCAL, steps(decision)
    assert steps(decision)[0] == (decision.instance, decision.model)
    assert any(r.startswith("Local only: the job is pinned to local lane koala") for r in
               decision.reasons)  # fmt: skip


@pytest.mark.parametrize("default_chain", ["local", "cheap"])
def test_local_only_chain_steps_elsewhere_are_dropped_with_the_reason(
    example_config: Config, default_chain: str
) -> None:
    router = Router(configured(example_config, default_chain), classifier=fixed())
    decision = router.decide(Job(prompt="Summarise these notes", instance="koala"))
    assert {target for target, _ in steps(decision)} == LOCAL
    assert f"zai rejected: {NOT_LOCAL}" in decision.reasons


def test_local_only_custom_rule_pinning_another_lane_is_skipped(example_config: Config) -> None:
    router = Router(configured(example_config, None), classifier=fixed())
    job = Job(prompt="Summarise these notes", instance="koala", strategy="custom_rules")
    decision = router.decide(job)
    assert decision.instance == "koala"
    assert any("matched but pins zai" in reason for reason in decision.reasons)


def test_local_only_hook_naming_another_lane_is_refused(example_config: Config) -> None:
    config = configured(example_config, "local", hook=f"{__name__}:pick_zai")
    router = Router(config, classifier=fixed())
    with pytest.raises(ConfigError, match="not a surviving candidate"):
        router.decide(Job(prompt="x", instance="koala", strategy="hook"))


def test_local_only_applies_while_cooldowns_are_waived(example_config: Config) -> None:
    cooling = StaticLaneState({"koala": LaneStatus(cooldown_s=30.0)})
    router = Router(configured(example_config, "cheap"), classifier=fixed(), lane_state=cooling)
    decision = router.decide(Job(prompt="x", instance="koala"))
    assert {target for target, _ in steps(decision)} == LOCAL


def test_local_only_does_not_bind_unpinned_work_or_other_pins(example_config: Config) -> None:
    router = Router(configured(example_config, "local"), classifier=fixed())
    unpinned = router.decide(Job(prompt="x", chain="local"), strategy="fallback_chain")
    assert [target for target, _ in steps(unpinned)] == ["koala", "zai"]
    pinned_elsewhere = router.decide(Job(prompt="x", instance="zai"))
    assert {target for target, _ in steps(pinned_elsewhere)} == {"zai", "koala"}
    assert not any(r.startswith("Local only") for r in pinned_elsewhere.reasons)
