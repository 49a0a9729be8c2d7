"""Where the review fan-out places each reviewer with the default lanes (ops/lanes.yaml)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rich.console import Console

from broker.app import create_app
from broker.dispatcher import Dispatcher
from broker.stores.memory import memory_stores
from kernel.config import Config
from lanes.demo import demo_json, demo_table
from lanes.review import SAMPLE_DIFF, placement_rule, review_job
from lanes.reviewers import Reviewer, configured_reviewers
from router.engine import Router

DIFF = SAMPLE_DIFF.read_text(encoding="utf-8")


@pytest.fixture
def dispatcher(example_config: Config) -> Iterator[Dispatcher]:
    """Wired as :class:`lanes.client.Lanes` wires it: router and pools share one counter."""
    stores = memory_stores()
    app = create_app(example_config, "redis://127.0.0.1:1/0")  # never contacted by prepare
    router = Router(example_config, counter=stores.counter)
    yield Dispatcher(example_config, app, router, stores)
    app.close()


@pytest.fixture
def defaults(example_config: Config) -> list[Reviewer]:
    return configured_reviewers(example_config)


def test_review_default_reviewers_pin_nothing_and_say_if_they_are_vital(
    defaults: list[Reviewer],
) -> None:
    DEFAULT_REVIEWERS = defaults
    assert [r.name for r in DEFAULT_REVIEWERS] == [
        "type-safety",
        "security",
        "architecture",
        "performance",
    ]
    assert all(r.instance is None and r.model is None for r in DEFAULT_REVIEWERS)
    assert {r.name: r.vital for r in DEFAULT_REVIEWERS} == {
        "type-safety": False,
        "security": True,
        "architecture": True,
        "performance": True,
    }


def test_review_job_routes_by_criticality_unless_told_otherwise(
    example_config: Config, defaults: list[Reviewer]
) -> None:
    security = defaults[1]
    job = review_job(security, DIFF)
    assert (job["strategy"], job["vital"], job["complexity"]) == ("criticality", True, "complex")
    assert "instance" not in job and "model" not in job
    assert example_config.review.strategy == "criticality"
    assert review_job(security, DIFF, strategy="cost_optimized")["strategy"] == "cost_optimized"
    open_reviewer = Reviewer("style", "style", instance="claude1")
    job = review_job(open_reviewer, DIFF)
    assert "vital" not in job and "complexity" not in job and job["instance"] == "claude1"


def test_review_placement_with_the_default_lanes(
    dispatcher: Dispatcher, defaults: list[Reviewer]
) -> None:
    placed = {}
    for reviewer in defaults:
        envelope, decision = dispatcher.prepare(review_job(reviewer, DIFF))
        placed[reviewer.name] = (envelope.instance, decision.model, placement_rule(decision))
        assert decision.strategy == "criticality"
    assert placed["type-safety"] == (
        "zai",
        "glm-4.5-air",
        "non-vital work goes to the cheapest lane reaching capability 70 for code-review",
    )
    vital = [placed[name] for name in ("security", "architecture", "performance")]
    assert [lane for lane, _, _ in vital] == ["claude2", "claude3", "claude2"]
    assert {model for _, model, _ in vital} == {"claude-sonnet-4-5"}
    for _, _, rule in vital:
        assert rule.startswith("vital work")
        assert rule.endswith(
            "goes to a vital lane: cheapest model reaching capability 90 for code-review"
        )


def test_review_vital_reviews_alternate_over_consecutive_submissions(
    dispatcher: Dispatcher, defaults: list[Reviewer]
) -> None:
    security = defaults[1]
    lanes = [dispatcher.prepare(review_job(security, DIFF))[0].instance for _ in range(6)]
    assert lanes == ["claude2", "claude3"] * 3


def test_review_vital_reviews_never_touch_a_cheap_lane(
    dispatcher: Dispatcher, defaults: list[Reviewer]
) -> None:
    for reviewer in defaults[1:]:
        _, decision = dispatcher.prepare(review_job(reviewer, DIFF))
        targets = {decision.instance, *(step.instance for step in decision.chain)}
        assert targets <= {"vital", "claude1"}


def test_review_demo_table_shows_lane_model_and_rule() -> None:
    row = {
        "reviewer": "security",
        "lane": "claude2",
        "model": "claude-sonnet-4-5",
        "rule": "vital work goes to a vital lane: cheapest model reaching capability 90 [x]",
        "status": "ok",
        "input_tokens": 500,
        "output_tokens": 300,
        "cost_usd": 0.006,
        "latency_s": 1.5,
    }
    console = Console(width=200, record=True)
    console.print(demo_table([row]))
    text = console.export_text()
    assert "claude2" in text and "claude-sonnet-4-5" in text
    assert "cheapest model reaching capability 90 [x]" in text
    assert demo_json([row])["jobs"][0]["rule"] == row["rule"]
