"""Code review fan-out: one job per reviewer (per chunk), one Celery group, one report.

Review jobs are routed by ``review.strategy`` (default ``criticality``) unless the caller names
another one, and each reviewer says whether its work is vital. With the default lanes
(``ops/lanes.yaml``) the type-safety review, cheap to get wrong, goes to the cheap lane ``zai``;
the security, architecture and performance reviews are vital and go to the ``vital`` pool on
claude-sonnet-4-5, the pool's round robin alternating claude2 and claude3.

A diff larger than a reviewer's context window is split into chunks that fit (at file
boundaries, then hunks, then lines), never truncated: each chunk is a job of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broker.handle import JobHandle, wait_all
from broker.result import Result
from kernel.config import Config
from lanes.diffs import split_diff
from lanes.reviewers import CHEAP_TAG, Reviewer, configured_reviewers
from router.classifier import estimate_tokens
from router.decision import Decision

if TYPE_CHECKING:
    from lanes.client import Lanes

SAMPLE_DIFF = Path(__file__).resolve().parent / "data" / "sample.diff"
RULE_PREFIX = "Criticality: "
FIT_SHARE = 0.8
"""Share of a window a chunk may fill: token estimates are off by up to about 20%."""


def prompt_for(reviewer: Reviewer, diff: str, part: tuple[int, int] = (1, 1)) -> str:
    index, total = part
    which = f" (part {index} of {total}; the other parts go to other jobs)" if total > 1 else ""
    return (
        f"Review this diff{which} for {reviewer.focus}.\n"
        "List each finding with file, line, severity (high/medium/low) and a concrete fix.\n\n"
        f"```diff\n{diff}\n```"
    )


def system_for(reviewer: Reviewer) -> str:
    return reviewer.system or f"You are a meticulous {reviewer.name} code reviewer."


def review_job(
    reviewer: Reviewer,
    diff: str,
    *,
    project: str | None = None,
    strategy: str | None = None,
    part: tuple[int, int] = (1, 1),
) -> dict[str, Any]:
    """The job of one reviewer on one chunk, routed by ``strategy`` (default criticality)."""
    job: dict[str, Any] = {
        "prompt": prompt_for(reviewer, diff, part),
        "system": system_for(reviewer),
        "task_type": "code-review",
        "max_tokens": reviewer.max_tokens,
        "strategy": strategy or "criticality",
        "project": project,
        "metadata": {"reviewer": reviewer.name, "part": f"{part[0]}/{part[1]}"},
    }
    optional = {
        "vital": reviewer.vital,
        "complexity": reviewer.complexity.value if reviewer.complexity else None,
        "instance": reviewer.instance,
        "model": reviewer.model,
    }
    job.update({key: value for key, value in optional.items() if value is not None})
    return job


def context_window(config: Config, reviewer: Reviewer) -> int:
    """The largest window the reviewer's job can get: its model's, else the largest of the
    models on the lanes it may use (a vital reviewer: none tagged cheap)."""
    if reviewer.model:
        return config.models[reviewer.model].context_window
    members = config.members(reviewer.instance) if reviewer.instance else config.lanes()
    windows = [
        config.models[model].context_window
        for name in members
        for model in config.instances[name].models
        if config.instances[name].enabled
        and not (reviewer.vital and CHEAP_TAG in config.instances[name].tags)
    ]
    return max(windows, default=0)


def chunk_tokens(config: Config, reviewer: Reviewer) -> int:
    """How many diff tokens one job of ``reviewer`` may carry."""
    overhead = estimate_tokens(prompt_for(reviewer, "", (99, 99)) + system_for(reviewer))
    room = context_window(config, reviewer) - reviewer.max_tokens - overhead
    return max(1, int(room * FIT_SHARE))


def review_jobs(
    config: Config,
    diff: str,
    reviewers: Sequence[Reviewer],
    *,
    project: str | None = None,
    strategy: str | None = None,
) -> list[tuple[Reviewer, dict[str, Any]]]:
    """Every job of a review: each reviewer's chunks of ``diff``, in order."""
    jobs = []
    for reviewer in reviewers:
        chunks = split_diff(diff, chunk_tokens(config, reviewer))
        for i, chunk in enumerate(chunks, 1):
            part = (i, len(chunks))
            job = review_job(reviewer, chunk, project=project, strategy=strategy, part=part)
            jobs.append((reviewer, job))
    return jobs


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
    reviewers: Sequence[Reviewer] | None = None,
    *,
    strategy: str | None = None,
    project: str | None = None,
) -> list[tuple[Reviewer, JobHandle]]:
    """Submit every job of the review as one Celery group; they run in parallel."""
    chosen = list(reviewers) if reviewers is not None else configured_reviewers(lanes.config)
    strategy = strategy or lanes.config.review.strategy
    jobs = review_jobs(lanes.config, diff, chosen, project=project, strategy=strategy)
    handles = lanes.dispatcher.submit_group([job for _, job in jobs])
    return [(reviewer, handle) for (reviewer, _), handle in zip(jobs, handles, strict=True)]


def collect(handles: list[tuple[Reviewer, JobHandle]], timeout_s: float) -> list[dict[str, Any]]:
    """One row per job, in order; a failed or late job is a row, not an exception. All jobs
    share one deadline."""
    results = wait_all((h for _, h in handles), time.monotonic() + timeout_s)
    return [
        _row(reviewer, handle, result) if result is not None
        else _late_row(reviewer, handle, f"job {handle.id} not finished after {timeout_s}s")
        for (reviewer, handle), result in zip(handles, results, strict=True)
    ]  # fmt: skip


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
        "fell_back": [
            f"{f.from_instance}/{f.from_model} -> step {f.to_step}: {f.reason}"
            for f in result.fallbacks
        ],
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
        "fell_back": [],
        "cached": False,
        "cost_saved_usd": 0.0,
        "error": error,
        "text": "",
    }


@dataclass
class ReviewerReport:
    """One reviewer's part of the report: its jobs (one per chunk) summed up."""

    reviewer: Reviewer
    jobs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        statuses = {job["status"] for job in self.jobs}
        return "ok" if statuses == {"ok"} else next(s for s in statuses if s != "ok")

    def to_json(self) -> dict[str, Any]:
        return {
            "reviewer": self.reviewer.name,
            "source": self.reviewer.source,
            "vital": bool(self.reviewer.vital),
            "lanes": sorted({str(job["lane"]) for job in self.jobs}),
            "models": sorted({str(job["model"]) for job in self.jobs}),
            "status": self.status,
            "chunks": len(self.jobs),
            "cost_usd": round(sum(job["cost_usd"] for job in self.jobs), 6),
            "latency_s": round(max((job["latency_s"] for job in self.jobs), default=0.0), 3),
            "input_tokens": sum(job["input_tokens"] for job in self.jobs),
            "output_tokens": sum(job["output_tokens"] for job in self.jobs),
            "fell_back": [line for job in self.jobs for line in job["fell_back"]],
            "overrides": list(self.reviewer.overrides),
            "rules": sorted({job["rule"] for job in self.jobs if job["rule"]}),
            "errors": [job["error"] for job in self.jobs if job["error"]],
            "findings": "\n\n".join(job["text"] for job in self.jobs if job["text"]),
            "job_ids": [job["job_id"] for job in self.jobs],
        }


@dataclass
class ReviewReport:
    """What ``lanes review`` prints: every reviewer's findings, where each ran, what it cost."""

    title: str
    reviewers: list[ReviewerReport]
    elapsed_s: float
    diff_bytes: int

    @property
    def ok(self) -> bool:
        return all(r.status == "ok" for r in self.reviewers)

    def to_json(self) -> dict[str, Any]:
        parts = [r.to_json() for r in self.reviewers]
        return {
            "title": self.title,
            "ok": self.ok,
            "elapsed_s": round(self.elapsed_s, 3),
            "diff_bytes": self.diff_bytes,
            "total_cost_usd": round(sum(p["cost_usd"] for p in parts), 6),
            "reviewers": parts,
        }

    def markdown(self) -> str:
        data = self.to_json()
        lines = [
            f"# Code review: {self.title}",
            "",
            f"{len(self.reviewers)} reviewers, {sum(p['chunks'] for p in data['reviewers'])}"
            f" jobs, total cost ${data['total_cost_usd']:.6f}, wall time"
            f" {data['elapsed_s']:.2f}s.",
            "",
            "| reviewer | lane | model | status | chunks | cost (USD) | time | fell back |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for part in data["reviewers"]:
            fell = len(part["fell_back"])
            lines.append(
                f"| {part['reviewer']} | {', '.join(part['lanes'])} | {', '.join(part['models'])}"
                f" | {part['status']} | {part['chunks']} | {part['cost_usd']:.6f}"
                f" | {part['latency_s']:.2f}s | {f'yes ({fell})' if fell else 'no'} |"
            )
        for part in data["reviewers"]:
            lines.extend(["", *_section(part)])
        return "\n".join(lines) + "\n"


def _section(part: dict[str, Any]) -> list[str]:
    head = f"## {part['reviewer']} ({', '.join(part['lanes'])} / {', '.join(part['models'])})"
    lines = [head, ""]
    lines += [f"> overrode {note}" for note in part["overrides"]]
    lines += [f"> fell back: {line}" for line in part["fell_back"]]
    lines += [f"> error: {error}" for error in part["errors"]]
    if len(lines) > 2:
        lines.append("")
    lines.append(part["findings"] or "_no findings returned_")
    return lines


def build_report(
    title: str, rows: list[dict[str, Any]], reviewers: Sequence[Reviewer], elapsed_s: float,
    diff_bytes: int,
) -> ReviewReport:  # fmt: skip
    parts = {r.name: ReviewerReport(r) for r in reviewers}
    for row in rows:
        parts[row["reviewer"]].jobs.append(row)
    return ReviewReport(title, list(parts.values()), elapsed_s, diff_bytes)


def review(
    lanes: Lanes,
    diff: str,
    *,
    reviewers: Sequence[Reviewer] | None = None,
    strategy: str | None = None,
    project: str | None = None,
    timeout_s: float | None = None,
    title: str = "diff",
) -> ReviewReport:
    """Fan ``diff`` out to ``reviewers`` (default: the config's), wait, and report."""
    chosen = list(reviewers) if reviewers is not None else configured_reviewers(lanes.config)
    started = time.monotonic()
    handles = fan_out(lanes, diff, chosen, strategy=strategy, project=project)
    rows = collect(handles, timeout_s or lanes.config.review.timeout_s)
    elapsed = time.monotonic() - started
    return build_report(title, rows, chosen, elapsed, len(diff.encode("utf-8")))


async def areview(
    lanes: Lanes,
    diff: str,
    *,
    reviewers: Sequence[Reviewer] | None = None,
    strategy: str | None = None,
    project: str | None = None,
    timeout_s: float | None = None,
    title: str = "diff",
) -> ReviewReport:
    """:func:`review` for asyncio (runs in a thread; the event loop stays free)."""
    return await asyncio.to_thread(
        review, lanes, diff, reviewers=reviewers, strategy=strategy, project=project,
        timeout_s=timeout_s, title=title,
    )  # fmt: skip
