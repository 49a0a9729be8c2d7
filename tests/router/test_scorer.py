from __future__ import annotations

from typing import Any

import pytest

from lanes.kernel.config import Config
from lanes.kernel.config.models import Weights
from lanes.kernel.taxonomy import Classification, Complexity, TaskType
from lanes.router.candidates import DEFAULT_STRENGTH, build_candidates
from lanes.router.filters import Demand, evaluate
from lanes.router.job import Job
from lanes.router.lane_state import NoHistory
from lanes.router.scorer import (
    Option,
    capability_reason,
    estimate_cost_usd,
    estimate_latency_s,
    normalize,
    rank,
    score_options,
)


def _clf(task: TaskType = TaskType.CODE_REVIEW, **kw: Any) -> Classification:
    fields: dict[str, Any] = {
        "type": task,
        "complexity": Complexity.MEDIUM,
        "input_tokens": 1000,
        "output_tokens": 500,
    }
    return Classification(**{**fields, **kw})


def _options(config: Config, clf: Classification) -> list[Option]:
    demand = Demand.of(Job(prompt="x"), clf)
    found = [evaluate(c, demand) for c in build_candidates(config).routable]
    return [opt for opt, reason in found if opt is not None and reason is None]


def _scored(
    config: Config, clf: Classification, weights: Weights | None = None
) -> dict[str, Option]:
    options = _options(config, clf)
    score_options(options, options, normalize(weights or Weights()), NoHistory(), clf.type)
    return {o.candidate.key: o for o in options}


class FixedHistory:
    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    def score(self, instance: str, model: str, task_type: str) -> float | None:
        return self.scores.get(f"{instance}/{model}")


def test_scorer_normalize_scales_weights_to_sum_one() -> None:
    weights = normalize(Weights(capability=2, cost=1, quality=1, latency=0, historical=0))
    assert weights == pytest.approx((0.5, 0.25, 0.25, 0.0, 0.0))


def test_scorer_scores_stay_between_0_and_100(example_config: Config) -> None:
    for task in TaskType:
        for option in _scored(example_config, _clf(task)).values():
            assert 0.0 <= option.score <= 100.0


def test_scorer_estimated_cost_matches_config_pricing(example_config: Config) -> None:
    table = build_candidates(example_config)
    cand = table.by_pair[("claude1", "claude-opus-4-5")]
    usage = {"input_tokens": 1234, "output_tokens": 567}
    expected = example_config.price_usd("claude1", "claude-opus-4-5", usage)
    assert estimate_cost_usd(cand, 1234, 567) == pytest.approx(expected)


def test_scorer_latency_grows_mildly_with_output(example_config: Config) -> None:
    cand = build_candidates(example_config).by_pair[("claude1", "claude-haiku-4-5")]
    short, long = estimate_latency_s(cand, 100), estimate_latency_s(cand, 4000)
    assert cand.latency_s < short < long < 2 * cand.latency_s


def test_scorer_cost_only_weights_rank_free_first_then_cheaper(example_config: Config) -> None:
    cost_only = Weights(capability=0, cost=1, quality=0, latency=0, historical=0)
    scored = _scored(example_config, _clf(), cost_only)
    assert scored["koala/llama3.1:8b"].score == pytest.approx(100.0)
    assert scored["zai/glm-4.5-air"].score > scored["zai/glm-4.6"].score
    assert scored["zai/glm-4.6"].score > scored["claude1/claude-sonnet-4-5"].score
    assert scored["claude1/claude-opus-4-5"].score == pytest.approx(0.0)


def test_scorer_latency_only_weights_favour_the_fastest(example_config: Config) -> None:
    latency_only = Weights(capability=0, cost=0, quality=0, latency=1, historical=0)
    scored = _scored(example_config, _clf(), latency_only)
    best = max(scored.values(), key=lambda o: o.score)
    assert best.candidate.model == "llama3.1:8b"
    assert scored["claude1/claude-opus-4-5"].score < scored["claude1/claude-haiku-4-5"].score


def test_scorer_capability_follows_the_task_type(example_config: Config) -> None:
    capability_only = Weights(capability=1, cost=0, quality=0, latency=0, historical=0)
    review = _scored(example_config, _clf(TaskType.CODE_REVIEW), capability_only)
    assert review["claude1/claude-opus-4-5"].score == pytest.approx(95.0)
    codegen = _scored(example_config, _clf(TaskType.CODE_GENERATION), capability_only)
    assert codegen["claude1/claude-sonnet-4-5"].score == pytest.approx(95.0)


def test_scorer_missing_strength_defaults_to_70(example_config: Config) -> None:
    data = example_config.model_dump()
    data["models"]["llama3.1:8b"]["strengths"] = {}
    table = build_candidates(Config.model_validate(data))
    cand = table.by_pair[("koala", "llama3.1:8b")]
    assert cand.strengths[TaskType.ARCHITECTURE] == DEFAULT_STRENGTH == 70


def test_scorer_history_moves_the_score(example_config: Config) -> None:
    clf = _clf()
    options = _options(example_config, clf)
    weights = normalize(Weights())
    score_options(options, options, weights, NoHistory(), clf.type)
    neutral = {o.candidate.key: o.score for o in options}
    history = FixedHistory({"zai/glm-4.6": 1.0, "koala/llama3.1:8b": 0.0})
    score_options(options, options, weights, history, clf.type)
    after = {o.candidate.key: o.score for o in options}
    assert after["zai/glm-4.6"] == pytest.approx(neutral["zai/glm-4.6"] + 5.0)
    assert after["koala/llama3.1:8b"] == pytest.approx(neutral["koala/llama3.1:8b"] - 5.0)
    assert after["claude1/claude-opus-4-5"] == pytest.approx(neutral["claude1/claude-opus-4-5"])


def test_scorer_rank_puts_options_below_the_floor_last(example_config: Config) -> None:
    clf = _clf(TaskType.ARCHITECTURE, complexity=Complexity.COMPLEX)
    options = list(_scored(example_config, clf).values())
    ranking = rank(options, floor=80)
    reaching = [o for o in ranking if o.strength >= 80]
    assert ranking[: len(reaching)] == reaching
    assert ranking[0].candidate.model in {"claude-opus-4-5", "claude-sonnet-4-5"}


def test_scorer_rank_breaks_ties_by_lane_affinity(example_config: Config) -> None:
    vital = _clf(vital=True)
    ranking = rank(list(_scored(example_config, vital).values()))
    same_model = [o for o in ranking if o.candidate.model == "claude-sonnet-4-5"]
    assert [o.candidate.target for o in same_model] == ["vital", "claude1"]
    ordinary = rank(list(_scored(example_config, _clf()).values()))
    same_model = [o for o in ordinary if o.candidate.model == "claude-sonnet-4-5"]
    assert [o.candidate.target for o in same_model] == ["claude1", "vital"]


def test_scorer_capability_reason_names_task_and_strength(example_config: Config) -> None:
    option = _scored(example_config, _clf())["claude1/claude-opus-4-5"]
    assert capability_reason(option, "code-review") == (
        "Strong capability match for code-review (95/100)"
    )


def test_scorer_pool_prices_with_the_largest_member_multiplier(example_config: Config) -> None:
    data = example_config.model_dump()
    data["instances"]["claude3"]["price_multiplier"] = 1.5
    table = build_candidates(Config.model_validate(data))
    pooled = table.by_pair[("vital", "claude-haiku-4-5")]
    single = table.by_pair[("claude1", "claude-haiku-4-5")]
    assert pooled.usd_per_output_token == pytest.approx(1.5 * single.usd_per_output_token)
