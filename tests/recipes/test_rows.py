"""A job's row: every report shows a result under the same fields, each adding only its own."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from celery.result import AsyncResult

from lanes.broker.handle import JobHandle
from lanes.broker.message import FallbackEvent
from lanes.broker.result import Result
from lanes.recipes.batch import out_line
from lanes.recipes.compare import Comparison, Target
from lanes.recipes.pipeline import PipelineRun
from lanes.recipes.review.report import job_row, late_row, unsent_row
from lanes.recipes.review.reviewers import Reviewer
from lanes.recipes.rows import FIELDS, result_row
from lanes.router.decision import Decision

ANSWER = Result(
    job_id="j1",
    status="ok",
    instance="claude2",
    model="claude-sonnet-4-5",
    step=1,
    attempt=0,
    text="findings",
    input_tokens=120,
    output_tokens=80,
    cost_usd=0.0012345678,
    latency_s=1.23456,
    waited_s=2.5,
    deliveries=3,
    simulated=True,
    cost_saved_usd=0.0,
    fallbacks=[
        FallbackEvent(
            from_instance="claude3", from_model="claude-sonnet-4-5", to_step=1, reason="overloaded"
        )
    ],
)
REVIEWER = Reviewer("security", "security", vital=True)


def _handle(job_id: str, instance: str | None, model: str | None) -> JobHandle:
    decision = None
    if model is not None:
        decision = Decision(
            instance=instance or "vital",
            model=model,
            strategy="balanced",
            confidence=50,
            estimated_cost_usd=0.0,
            estimated_latency_s=1.0,
        )
    return JobHandle(
        cast(AsyncResult, SimpleNamespace(id=job_id)), decision=decision, instance=instance
    )


def test_rows_show_a_result_the_same_in_every_report() -> None:
    row = result_row(ANSWER)
    assert list(row) == list(FIELDS)
    assert (row["lane"], row["text"], row["fallbacks"]) == ("claude2", "findings", 1)
    assert row["cost_usd"] == ANSWER.cost_usd and row["latency_s"] == ANSWER.latency_s
    assert (row["waited_s"], row["deliveries"]) == (2.5, 3)  # the wait apart from the latency
    run = Comparison([Target("claude2")], [ANSWER], 1.0).to_json()["runs"][0]
    assert run == {"target": "claude2", **row}
    step = PipelineRun("p", ["audit"], [ANSWER], 1.0).to_json()["steps"][0]
    assert step == {"step": "audit", **row}
    reviewed = job_row(REVIEWER, ANSWER, "rule")
    assert reviewed == {
        "reviewer": "security",
        **row,
        "rule": "rule",
        "fell_back": ["claude3/claude-sonnet-4-5 -> step 1: overloaded"],
    }


def test_rows_batch_line_keeps_its_fields_and_names_the_text_output() -> None:
    line = out_line("q17", result_row(ANSWER))
    assert list(line) == [
        "id",
        "job_id",
        "lane",
        "model",
        "status",
        "output",
        "error",
        "cost_usd",
        "input_tokens",
        "output_tokens",
        "latency_s",
        "waited_s",
        "deliveries",
        "fallbacks",
        "cached",
        "cost_saved_usd",
        "batched",
        "simulated",
    ]
    assert (line["id"], line["output"]) == ("q17", "findings")


def test_rows_of_jobs_without_a_result_say_why_and_where_they_went() -> None:
    late = Comparison(
        [Target("zai"), Target("vital")],
        [None, None],
        9.0,
        handles=[_handle("j2", "zai", "glm-4.6"), _handle("j3", None, None)],
        cancel_reason="not finished within lanes compare --timeout 9s",
    ).to_json()["runs"]
    assert [list(run) for run in late] == [["target", *FIELDS]] * 2
    assert [(r["job_id"], r["lane"], r["model"], r["status"]) for r in late] == [
        ("j2", "zai", "glm-4.6", "timeout"),
        ("j3", "", "", "timeout"),
    ]
    assert late[0]["error"] == "cancelled: not finished within lanes compare --timeout 9s"
    assert late[0]["cost_usd"] == 0.0 and late[0]["text"] == "" and not late[0]["cached"]
    steps = PipelineRun("p", ["a", "b"], [ANSWER, None], 2.0).to_json()["steps"]
    assert steps[1]["status"] == "timeout" and steps[1]["job_id"] is None
    reviewed = late_row(REVIEWER, _handle("j4", "claude2", "claude-sonnet-4-5"), "r", "late")
    assert (reviewed["job_id"], reviewed["lane"], reviewed["status"]) == (
        "j4",
        "claude2",
        "timeout",
    )
    unsent = unsent_row(REVIEWER, "not sent: the deadline passed first")
    assert (unsent["job_id"], unsent["lane"], unsent["status"]) == (None, "", "not sent")
    assert set(FIELDS) <= set(reviewed) and set(FIELDS) <= set(unsent)
