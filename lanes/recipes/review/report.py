"""The report of a review: one row per job, summed up per reviewer, as Markdown and JSON.

A job's row is the row of :mod:`lanes.recipes.rows` with what is the review's own: the
reviewer, the rule that put the job where it ran and a line per fallback (``fell_back``). Two
of its marks decide how the findings read: ``cached`` (no provider call, cost 0) and
``simulated`` (the text is the provider simulator's filler, not a model's review). A job the
deadline caught is ``timeout`` (sent, abandoned: its handle is in
:attr:`ReviewReport.abandoned`) or ``not sent``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lanes.broker.handle import JobHandle
from lanes.broker.result import Result
from lanes.recipes.review.reviewers import Reviewer
from lanes.recipes.rows import NOT_SENT, Row, result_row
from lanes.recipes.rows import late_row as sent_late_row
from lanes.recipes.rows import unsent_row as never_sent_row


def job_row(reviewer: Reviewer, result: Result, rule: str) -> Row:
    """A finished job (ok or failed): its row, the reviewer, the rule that placed it and a
    line per fallback."""
    fell_back = [f"{f.from_instance}/{f.from_model} -> step {f.to_step}: {f.reason}"
                 for f in result.fallbacks]  # fmt: skip
    return _own(reviewer, result_row(result), rule, fell_back)


def late_row(reviewer: Reviewer, handle: JobHandle, rule: str, error: str) -> Row:
    """A job sent but not finished by the deadline: abandoned, its lane as routed."""
    return _own(reviewer, sent_late_row(handle, error), rule)


def unsent_row(reviewer: Reviewer, error: str) -> Row:
    """A job of the review that was never sent (the deadline passed first, or the lanes
    refused it after other jobs of the review had gone)."""
    return _own(reviewer, never_sent_row(error), "")


def _own(reviewer: Reviewer, row: Row, rule: str, fell_back: list[str] | None = None) -> Row:
    """``row`` with what is the review's own: the reviewer, the rule, the fallbacks told."""
    return {"reviewer": reviewer.name, **row, "rule": rule, "fell_back": fell_back or []}


@dataclass
class ReviewerReport:
    """One reviewer's part of the report: its jobs (one per chunk) summed up."""

    reviewer: Reviewer
    jobs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``ok`` if every job is, else the first other status (``failed``, ``timeout``,
        ``not sent``)."""
        return next((job["status"] for job in self.jobs if job["status"] != "ok"), "ok")

    def to_json(self) -> dict[str, Any]:
        jobs = self.jobs
        cached = sum(1 for job in jobs if job["cached"])
        paid = [job for job in jobs if not job["cached"]]
        return {
            "reviewer": self.reviewer.name,
            "source": self.reviewer.source,
            "vital": bool(self.reviewer.vital),
            "lanes": sorted({str(job["lane"]) for job in jobs if job["lane"]}),
            "models": sorted({str(job["model"]) for job in jobs if job["model"]}),
            "status": self.status,
            "chunks": len(jobs),
            "cost_usd": round(sum(job["cost_usd"] for job in jobs), 6),
            "latency_s": round(max((job["latency_s"] for job in paid), default=0.0), 3),
            "cached": bool(jobs) and cached == len(jobs),
            "cached_chunks": cached,
            "cost_saved_usd": round(sum(job["cost_saved_usd"] for job in jobs), 6),
            "simulated": any(job["simulated"] for job in jobs),
            "input_tokens": sum(job["input_tokens"] for job in jobs),
            "output_tokens": sum(job["output_tokens"] for job in jobs),
            "fell_back": [line for job in jobs for line in job["fell_back"]],
            "overrides": list(self.reviewer.overrides),
            "rules": sorted({job["rule"] for job in jobs if job["rule"]}),
            "errors": [job["error"] for job in jobs if job["error"]],
            "findings": "\n\n".join(job["text"] for job in jobs if job["text"]),
            "job_ids": [job["job_id"] for job in jobs if job["job_id"]],
        }


@dataclass
class ReviewReport:
    """What ``lanes review`` prints: every reviewer's findings, where each ran, what it cost.

    ``abandoned`` holds the handle of every job that was sent but had not finished when the
    review's deadline passed (each was cancelled);
    ``notes`` what the report says before its table (agent files not used, files skipped).
    """

    title: str
    reviewers: list[ReviewerReport]
    elapsed_s: float
    diff_bytes: int
    timeout_s: float = 0.0
    abandoned: list[JobHandle] = field(default_factory=list)
    calls_in_flight: int = 0
    """Provider calls of abandoned jobs already running when they were cancelled: they
    finish and are billed (``lanes cost`` counts them), though the report cannot."""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.status == "ok" for r in self.reviewers)

    def to_json(self) -> dict[str, Any]:
        parts = [r.to_json() for r in self.reviewers]
        rows = [job for r in self.reviewers for job in r.jobs]
        return {
            "title": self.title,
            "ok": self.ok,
            "elapsed_s": round(self.elapsed_s, 3),
            "timeout_s": self.timeout_s,
            "diff_bytes": self.diff_bytes,
            "total_cost_usd": round(sum(p["cost_usd"] for p in parts), 6),
            "cost_saved_usd": round(sum(p["cost_saved_usd"] for p in parts), 6),
            "cached_jobs": sum(p["cached_chunks"] for p in parts),
            "simulated": any(p["simulated"] for p in parts),
            "simulated_lanes": sorted({str(j["lane"]) for j in rows if j["simulated"]}),
            "abandoned": [handle.id for handle in self.abandoned],
            "calls_in_flight": self.calls_in_flight,
            "not_sent": sum(1 for j in rows if j["status"] == NOT_SENT),
            "notes": list(self.notes),
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
            *_header_notes(data),
            "",
            "| reviewer | lane | model | status | chunks | cost (USD) | time | fell back |",
            "|---|---|---|---|---|---|---|---|",
        ]
        lines += [_table_row(part) for part in data["reviewers"]]
        for part in data["reviewers"]:
            lines.extend(["", *_section(part)])
        return "\n".join(lines) + "\n"


def _header_notes(data: dict[str, Any]) -> list[str]:
    """The marks a reader needs before the table: simulated lanes, cached answers, the
    deadline, and the notes."""
    notes = []
    if data["simulated"]:
        notes.append(
            f"> **Simulated:** {', '.join(data['simulated_lanes'])} answered from the local"
            " provider simulator, not a real model: their findings are filler text (set the"
            " lane's API key for real reviews)."
        )
    if data["cached_jobs"]:
        notes.append(
            f"> **Cached:** {data['cached_jobs']} job(s) answered from the response cache (no"
            f" provider call; ${data['cost_saved_usd']:.6f} saved)."
        )
    late, unsent = len(data["abandoned"]), data["not_sent"]
    if late or unsent:
        notes.append(
            f"> **Deadline:** the review stopped at its {data['timeout_s']:g}s timeout with"
            f" {late} job(s) abandoned unfinished and cancelled"
            f" ({', '.join(data['abandoned']) or 'none'}) and {unsent} not sent."
            + (
                f" {data['calls_in_flight']} of their provider calls were already running:"
                " they finish and are billed (see `lanes cost`)."
                if data["calls_in_flight"]
                else ""
            )
        )
    notes += [f"> note: {note}" for note in data["notes"]]
    return ["", *notes] if notes else []


def _table_row(part: dict[str, Any]) -> str:
    fell = len(part["fell_back"])
    lanes = ", ".join(part["lanes"]) or "-"
    status, cost, time = part["status"], f"{part['cost_usd']:.6f}", f"{part['latency_s']:.2f}s"
    if part["simulated"]:
        lanes += " (simulated)"
    if part["cached"]:
        status, time = f"{status} (cached)", "cached"
    elif part["cached_chunks"]:
        status = f"{status} ({part['cached_chunks']} of {part['chunks']} cached)"
    if part["cached_chunks"]:
        cost += f" (saved {part['cost_saved_usd']:.6f})"
    return (
        f"| {part['reviewer']} | {lanes} | {', '.join(part['models']) or '-'} | {status}"
        f" | {part['chunks']} | {cost} | {time} | {f'yes ({fell})' if fell else 'no'} |"
    )


def _section(part: dict[str, Any]) -> list[str]:
    where = f"{', '.join(part['lanes']) or '-'} / {', '.join(part['models']) or '-'}"
    marks = [m for m, on in (("simulated", part["simulated"]), ("cached", part["cached"])) if on]
    lines = [f"## {part['reviewer']} ({where}){' - ' + ', '.join(marks) if marks else ''}", ""]
    if part["cached_chunks"]:
        lines.append(
            f"> answered from the response cache ({part['cached_chunks']} of {part['chunks']}"
            f" jobs): no provider call, ${part['cost_saved_usd']:.6f} saved"
        )
    if part["simulated"]:
        lines.append("> simulated: the local provider simulator wrote this, not a model")
    lines += [f"> overrode {note}" for note in part["overrides"]]
    lines += [f"> fell back: {line}" for line in part["fell_back"]]
    lines += [f"> error: {error}" for error in part["errors"]]
    if len(lines) > 2:
        lines.append("")
    lines.append(part["findings"] or "_no findings returned_")
    return lines


def build_report(
    title: str, rows: list[dict[str, Any]], reviewers: Sequence[Reviewer], elapsed_s: float,
    diff_bytes: int, **extra: Any,
) -> ReviewReport:  # fmt: skip
    """The report of ``rows``; a reviewer without a row (its diff was never split before the
    deadline) gets one ``not sent`` row. ``extra``: ReviewReport's other fields."""
    parts = {r.name: ReviewerReport(r) for r in reviewers}
    for row in rows:
        parts[row["reviewer"]].jobs.append(row)
    for part in parts.values():
        if not part.jobs:
            part.jobs.append(unsent_row(part.reviewer, "not sent: the deadline passed first"))
    return ReviewReport(title, list(parts.values()), elapsed_s, diff_bytes, **extra)
