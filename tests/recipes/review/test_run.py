"""Where the review fan-out places each reviewer with the default lanes (lanes/data/lanes.yaml)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from celery.result import AsyncResult
from rich.console import Console

from lanes.broker.app import create_app
from lanes.broker.handle import JobHandle
from lanes.broker.result import Result
from lanes.dispatch.dispatcher import Dispatcher
from lanes.kernel.config import Config
from lanes.ops.demo import demo_json, demo_table
from lanes.recipes.review.report import build_report, job_row
from lanes.recipes.review.reviewers import Reviewer, configured_reviewers
from lanes.recipes.review.run import (
    GROUP_JOBS,
    SAMPLE_DIFF,
    Deadline,
    placement_rule,
    review_job,
    review_jobs,
    rule_for,
    send,
)
from lanes.router.decision import Decision
from lanes.router.engine import Router
from lanes.stores.memory import memory_stores

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


def test_every_reviewer_reads_the_diff_first_as_one_shared_prefix(
    defaults: list[Reviewer],
) -> None:
    jobs = [review_job(reviewer, DIFF) for reviewer in defaults]
    assert len({job["cache_prefix"] for job in jobs}) == 1
    assert DIFF in jobs[0]["cache_prefix"]
    assert all(DIFF not in job["prompt"] and "diff above" in job["prompt"] for job in jobs)


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


def _handle(job_id: str, decision: Decision | None = None) -> JobHandle:
    return JobHandle(cast(AsyncResult, SimpleNamespace(id=job_id)), decision=decision)


def test_a_pinned_reviewer_says_who_pinned_it_not_a_routing_rule(
    dispatcher: Dispatcher,
) -> None:
    pinned = Reviewer("type-safety", "types", vital=False, instance="claude1",
                      model="claude-haiku-4-5", source=".claude/agents/type-safety.md")  # fmt: skip
    _, decision = dispatcher.prepare(review_job(pinned, DIFF))
    assert placement_rule(decision).startswith("non-vital work")
    assert rule_for(pinned, decision) == (
        "pinned by agent file .claude/agents/type-safety.md"
        " (instance: claude1, model: claude-haiku-4-5)"
    )
    by_config = Reviewer("style", "style", instance="koala")
    assert rule_for(by_config, decision) == "pinned by review.reviewers (instance: koala)"
    free = Reviewer("security", "security", vital=True)
    assert rule_for(free, decision) == placement_rule(decision)


def test_the_report_marks_cached_and_simulated_answers() -> None:
    reviewer = Reviewer("security", "security", vital=True)
    answer = Result(job_id="j1", status="ok", instance="claude2", model="claude-sonnet-4-5",
                    step=0, attempt=0, text="findings", cached=True, cost_saved_usd=0.0123,
                    simulated=True)  # fmt: skip
    row = job_row(reviewer, answer, "rule")
    data = build_report("x", [row], [reviewer], 0.5, 10).to_json()
    part = data["reviewers"][0]
    assert (part["cached"], part["cost_saved_usd"], part["simulated"]) == (True, 0.0123, True)
    assert data["simulated_lanes"] == ["claude2"] and data["cost_saved_usd"] == 0.0123
    text = build_report("x", [row], [reviewer], 0.5, 10).markdown()
    assert "**Simulated:** claude2 answered from the local provider simulator" in text
    assert "| security | claude2 (simulated) | claude-sonnet-4-5 | ok (cached) | 1 |" in text
    assert "0.000000 (saved 0.012300) | cached |" in text
    assert "## security (claude2 / claude-sonnet-4-5) - simulated, cached" in text


def test_review_demo_table_marks_simulated_lanes_and_cached_answers() -> None:
    row = {"reviewer": "security", "lane": "claude2", "model": "claude-sonnet-4-5",
           "rule": "r", "status": "ok", "input_tokens": 5, "output_tokens": 3,
           "cost_usd": 0.0, "latency_s": 0.0, "cached": True, "cost_saved_usd": 0.01,
           "simulated": True}  # fmt: skip
    console = Console(width=250, record=True)
    console.print(demo_table([row]))
    text = console.export_text()
    assert "claude2 (simulated)" in text and "ok (cached)" in text
    assert "answered from the local provider simulator" in text
    assert demo_json([row])["jobs"][0]["simulated"] is True


class _Dispatcher:
    """Takes groups of jobs; the review's deadline passes while the first is sent."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.groups: list[int] = []

    def submit_group(self, jobs: list[dict[str, Any]]) -> list[JobHandle]:
        self.groups.append(len(jobs))
        self.deadline.started -= 3600  # sending took longer than the whole timeout
        return [_handle(f"j{len(self.groups)}-{i}") for i in range(len(jobs))]


def test_sending_stops_at_the_deadline_and_the_rest_is_reported_not_sent(
    example_config: Config,
) -> None:
    reviewer = Reviewer("style", "style", vital=False)
    jobs = [(reviewer, review_job(reviewer, DIFF))] * (GROUP_JOBS + 5)
    deadline = Deadline(60.0)
    dispatcher = _Dispatcher(deadline)
    lanes = SimpleNamespace(submit_group=dispatcher.submit_group, config=example_config)
    sent, unsent = send(cast(Any, lanes), jobs, deadline)
    assert dispatcher.groups == [GROUP_JOBS]
    assert len(sent) == GROUP_JOBS and len(unsent) == 5
    assert {row["status"] for row in unsent} == {"not sent"}
    assert "60s deadline passed first" in unsent[0]["error"]
    report = build_report("x", unsent, [reviewer], 1.0, 10, timeout_s=60.0)
    assert not report.ok and report.to_json()["not_sent"] == 5
    assert "> **Deadline:** the review stopped at its 60s timeout" in report.markdown()


def test_a_review_whose_deadline_passed_while_splitting_sends_nothing(
    example_config: Config, defaults: list[Reviewer]
) -> None:
    deadline = Deadline(60.0, started=time.monotonic() - 61)
    assert review_jobs(example_config, DIFF, defaults, deadline=deadline) == []
    report = build_report("x", [], defaults, 61.0, 10, timeout_s=60.0)
    assert [part.status for part in report.reviewers] == ["not sent"] * 4
