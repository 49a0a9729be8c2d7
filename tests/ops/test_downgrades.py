"""Downgrade advice never suggests what routing would refuse vital work."""

from __future__ import annotations

from functools import partial

from lanes.kernel.config import Config
from lanes.ops.reports import downgrades
from lanes.router.filters import vital_refusal
from lanes.stores.ledger import TaskOutcome

SONNET = "claude-sonnet-4-5"


def outcome(instance: str, model: str, avg_cost: float, *, vital: bool) -> TaskOutcome:
    return TaskOutcome(task_type="code-review", instance=instance, model=model, vital=vital,
                       jobs=20, success_rate=1.0, rating=None, avg_cost_usd=avg_cost,
                       cost_usd=20 * avg_cost)  # fmt: skip


def test_vital_reviews_are_never_advised_onto_a_cheap_lane_or_below_the_tier(
    example_config: Config,
) -> None:
    rows = [
        outcome("claude3", SONNET, 0.05, vital=True),
        outcome("claude1", SONNET, 0.04, vital=False),
        outcome("claude2", "claude-haiku-4-5", 0.01, vital=False),
        outcome("zai", "glm-4.5-air", 0.002, vital=False),
    ]
    advice = downgrades(rows, 30.0, partial(vital_refusal, example_config))
    by_source = {(a.from_instance, a.vital): a for a in advice}
    vital = by_source[("claude3", True)]
    assert (vital.to_instance, vital.to_model) == ("claude1", SONNET)
    assert vital.sentence().startswith("route vital code-review from claude3/")
    not_vital = by_source[("claude1", False)]
    assert (not_vital.to_instance, not_vital.to_model) == ("zai", "glm-4.5-air")


def test_without_an_allowed_peer_vital_work_gets_no_advice(example_config: Config) -> None:
    rows = [
        outcome("claude3", SONNET, 0.05, vital=True),
        outcome("zai", "glm-4.5-air", 0.002, vital=False),
    ]
    refusal = partial(vital_refusal, example_config)
    assert downgrades(rows, 30.0, refusal) == []
    assert len(downgrades(rows, 30.0, lambda _i, _m: None)) == 1  # the filter is what stops it
