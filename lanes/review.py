"""Code review fan-out: one job per reviewer, in parallel across lanes, one report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.handle import JobHandle
from broker.result import Result
from kernel.errors import JobTimeout
from lanes.client import Lanes

SAMPLE_DIFF = Path(__file__).resolve().parent / "data" / "sample.diff"


@dataclass(frozen=True)
class Reviewer:
    name: str
    focus: str
    instance: str | None = None
    """Pin a lane; None lets the router choose."""
    model: str | None = None
    max_tokens: int = 800


DEFAULT_REVIEWERS = (
    Reviewer("type-safety", "type safety: missing or wrong annotations, None handling, casts"),
    Reviewer("security", "security: injection, secrets in code, authorization, unsafe input"),
    Reviewer(
        "architecture",
        "architecture: layering, coupling, error handling strategy, transactional integrity",
        instance="claude1",
        model="claude-opus-4-5",
    ),
    Reviewer("performance", "performance: N+1 queries, full scans, needless work in loops"),
)


def review_job(reviewer: Reviewer, diff: str, *, project: str | None = None) -> dict[str, Any]:
    prompt = (
        f"Review this diff for {reviewer.focus}.\n"
        "List each finding with file, line, severity (high/medium/low) and a concrete fix.\n\n"
        f"```diff\n{diff}\n```"
    )
    job: dict[str, Any] = {
        "prompt": prompt,
        "system": f"You are a meticulous {reviewer.name} code reviewer.",
        "task_type": "code-review",
        "max_tokens": reviewer.max_tokens,
        "project": project,
        "metadata": {"reviewer": reviewer.name},
    }
    if reviewer.instance:
        job["instance"] = reviewer.instance
    if reviewer.model:
        job["model"] = reviewer.model
    return job


def fan_out(
    lanes: Lanes, diff: str, reviewers: tuple[Reviewer, ...] = DEFAULT_REVIEWERS
) -> list[tuple[Reviewer, JobHandle]]:
    """Submit one job per reviewer; they run in parallel on their lanes."""
    return [(r, lanes.submit(review_job(r, diff))) for r in reviewers]


def collect(handles: list[tuple[Reviewer, JobHandle]], timeout_s: float) -> list[dict[str, Any]]:
    """One row per reviewer, in order; a failed or late reviewer is a row, not an exception."""
    rows = []
    for reviewer, handle in handles:
        try:
            result = handle.get(timeout_s=timeout_s, raise_on_failure=False)
        except JobTimeout as exc:
            rows.append(_late_row(reviewer, handle, str(exc)))
        else:
            rows.append(_row(reviewer, handle, result))
    return rows


def _row(reviewer: Reviewer, handle: JobHandle, result: Result) -> dict[str, Any]:
    return {
        "reviewer": reviewer.name,
        "job_id": handle.id,
        "lane": result.instance,
        "model": result.model,
        "status": result.status,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "cost_usd": round(result.cost_usd, 6),
        "latency_s": round(result.latency_s, 3),
        "fallbacks": len(result.fallbacks),
        "error": result.error,
        "text": result.text,
    }


def _late_row(reviewer: Reviewer, handle: JobHandle, error: str) -> dict[str, Any]:
    return {
        "reviewer": reviewer.name,
        "job_id": handle.id,
        "lane": handle.instance,
        "model": handle.decision.model if handle.decision else None,
        "status": "timeout",
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
        "latency_s": 0.0,
        "fallbacks": 0,
        "error": error,
        "text": "",
    }
