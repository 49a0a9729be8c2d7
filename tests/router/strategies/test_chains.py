from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from lanes.kernel.config import Config
from lanes.kernel.errors import JobError
from lanes.kernel.taxonomy import TaskType
from lanes.router.engine import Router
from lanes.router.job import Job
from lanes.router.strategies.chains import MAX_STEPS
from tests.router.fixed_classifier import fixed


def steps(decision: Any) -> list[tuple[str, str]]:
    return [(s.instance, s.model) for s in decision.chain]


def test_chains_default_chain_starts_with_the_choice_on_distinct_lanes(
    example_config: Config,
) -> None:
    for task in TaskType:
        decision = Router(example_config, classifier=fixed(type=task)).decide(Job(prompt="x"))
        chain = steps(decision)
        assert chain[0] == (decision.instance, decision.model)
        assert 1 < len(chain) <= MAX_STEPS
        assert len({target for target, _ in chain}) == len(chain)


def test_chains_configured_chain_resolves_steps_without_a_model(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed(type=TaskType.TESTING))
    decision = router.decide(Job(prompt="x", chain="local"), strategy="fallback_chain")
    assert steps(decision) == [("koala", "qwen2.5-coder:14b"), ("zai", "glm-4.5-air")]


def test_chains_steps_that_cannot_fit_the_context_are_dropped(example_config: Config) -> None:
    fits_llama = Router(example_config, classifier=fixed(input_tokens=60_000))
    decision = fits_llama.decide(Job(prompt="x", chain="local"), strategy="fallback_chain")
    assert steps(decision)[0] == ("koala", "llama3.1:8b")
    too_big = Router(example_config, classifier=fixed(input_tokens=140_000))
    decision = too_big.decide(Job(prompt="x", chain="local"), strategy="fallback_chain")
    assert steps(decision) == [("zai", "glm-4.6")]
    assert "koala/llama3.1:8b" in decision.rejections


def test_chains_vital_work_drops_cheap_steps(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed(vital=True))
    decision = router.decide(Job(prompt="x", chain="cheap"))
    lanes = [target for target, _ in steps(decision)]
    assert "zai" not in lanes and "koala" not in lanes
    assert ("vital", "claude-haiku-4-5") not in steps(decision)  # below the vital tier
    assert "below the tier vital work needs" in decision.rejections["vital/claude-haiku-4-5"]
    assert steps(decision)[0] == (decision.instance, decision.model)


def test_chains_routing_default_chain_applies_to_every_decision(example_config: Config) -> None:
    data = example_config.model_dump()
    data["routing"]["default_chain"] = "premium"
    router = Router(Config.model_validate(data), classifier=fixed(type=TaskType.DOCUMENTATION))
    decision = router.decide(Job(prompt="x"))
    chain = steps(decision)
    assert chain[0] == (decision.instance, decision.model)
    assert chain[1:] == [("claude1", "claude-opus-4-5"), ("vital", "claude-opus-4-5")]


def test_chains_unknown_job_chain_is_a_job_error(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed())
    with pytest.raises(JobError, match="unknown chain 'nope'; choose one of: vital, premium"):
        router.decide(Job(prompt="x", chain="nope"))


def test_chains_step_naming_a_model_its_target_lacks_is_a_config_error(
    example_config: Config,
) -> None:
    data = example_config.model_dump()
    data["fallback_chains"]["odd"] = [
        {"instance": "koala", "model": "claude-opus-4-5"},
        {"instance": "claude1", "model": "claude-haiku-4-5"},
    ]
    with pytest.raises(ValidationError, match=r"odd\[0\]\.model: koala does not offer"):
        Config.model_validate(data)


def test_chains_lane_pin_falls_back_to_other_models_on_that_lane(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed())
    decision = router.decide(Job(prompt="x", instance="claude1"))
    chain = steps(decision)
    assert {target for target, _ in chain} == {"claude1"}
    assert len(chain) == MAX_STEPS == len({model for _, model in chain})
