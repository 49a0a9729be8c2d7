"""Code review fan-out: one job per reviewer, in parallel across lanes, one report.

Review jobs are routed by the ``criticality`` strategy unless the caller names another one,
and each reviewer says whether its work is vital. With the default lanes (``ops/lanes.yaml``)
the type-safety review, cheap to get wrong, goes to the cheap lane ``zai``; the security,
architecture and performance reviews are vital and go to the ``vital`` pool on
claude-sonnet-4-5, the pool's round robin alternating claude2 and claude3.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.handle import JobHandle
from broker.result import Result
from kernel.errors import JobTimeout
from kernel.taxonomy import Complexity, StrategyName
from lanes.client import Lanes
from router.decision import Decision

SAMPLE_DIFF = Path(__file__).resolve().parent / "data" / "sample.diff"
REVIEW_STRATEGY = StrategyName.CRITICALITY.value
"""How review jobs are routed unless the caller names a strategy."""
RULE_PREFIX = "Criticality: "


@dataclass(frozen=True)
class Reviewer:
    name: str
    focus: str
    vital: bool | None = None
    """Sets the job's ``vital``: True sends it to vital lanes only, False lets it run on cheap
    ones; None leaves it to the classifier."""
    complexity: Complexity | None = None
    """How demanding the review is; None leaves it to the classifier."""
    instance: str | None = None
    """Pin a lane; None lets the router choose."""
    model: str | None = None
    max_tokens: int = 800


DEFAULT_REVIEWERS = (
    Reviewer(
        "type-safety",
        "type safety: missing or wrong annotations, None handling, casts",
        vital=False,
        complexity=Complexity.MEDIUM,
    ),
    Reviewer(
        "security",
        "security: injection, secrets in code, authorization, unsafe input",
        vital=True,
        complexity=Complexity.COMPLEX,
    ),
    Reviewer(
        "architecture",
        "architecture: layering, coupling, error handling strategy, transactional integrity",
        vital=True,
        complexity=Complexity.COMPLEX,
    ),
    Reviewer(
        "performance",
        "performance: N+1 queries, full scans, needless work in loops",
        vital=True,
        complexity=Complexity.COMPLEX,
    ),
)
"""Vitality and complexity are set, not guessed, so where each review runs never depends on
how the classifier reads the diff."""


def review_job(
    reviewer: Reviewer,
    diff: str,
    *,
    project: str | None = None,
    strategy: str | None = None,
) -> dict[str, Any]:
    """The job of one reviewer, routed by ``strategy`` (default: ``REVIEW_STRATEGY``)."""
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
        "strategy": strategy or REVIEW_STRATEGY,
        "project": project,
        "metadata": {"reviewer": reviewer.name},
    }
    optional = {
        "vital": reviewer.vital,
        "complexity": reviewer.complexity.value if reviewer.complexity else None,
        "instance": reviewer.instance,
        "model": reviewer.model,
    }
    job.update({key: value for key, value in optional.items() if value is not None})
    return job


def placement_rule(decision: Decision | None) -> str:
    """The rule that placed a job: its criticality reason, else its strategy ('' unknown)."""
    if decision is None:
        return ""
    for reason in decision.reasons:
        if reason.startswith(RULE_PREFIX):
            return reason.removeprefix(RULE_PREFIX)
    return f"strategy {decision.strategy}"


def fan_out(
    lanes: Lanes,
    diff: str,
    reviewers: tuple[Reviewer, ...] = DEFAULT_REVIEWERS,
    *,
    strategy: str | None = None,
) -> list[tuple[Reviewer, JobHandle]]:
    """Submit one job per reviewer; they run in parallel on their lanes."""
    return [(r, lanes.submit(review_job(r, diff, strategy=strategy))) for r in reviewers]


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
        "rule": placement_rule(handle.decision),
        "status": result.status,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "cost_usd": round(result.cost_usd, 6),
        "latency_s": round(result.latency_s, 3),
        "fallbacks": len(result.fallbacks),
        "cached": result.cached,
        "cost_saved_usd": round(result.cost_saved_usd, 6),
        "error": result.error,
        "text": result.text,
    }


def _late_row(reviewer: Reviewer, handle: JobHandle, error: str) -> dict[str, Any]:
    return {
        "reviewer": reviewer.name,
        "job_id": handle.id,
        "lane": handle.instance,
        "model": handle.decision.model if handle.decision else None,
        "rule": placement_rule(handle.decision),
        "status": "timeout",
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
        "latency_s": 0.0,
        "fallbacks": 0,
        "cached": False,
        "cost_saved_usd": 0.0,
        "error": error,
        "text": "",
    }
