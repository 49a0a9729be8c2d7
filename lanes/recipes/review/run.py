"""Code review fan-out: one job per reviewer (per chunk), sent as Celery groups, one report.

Review jobs are routed by ``review.strategy`` (default ``criticality``) unless the caller names
another one, and each reviewer says whether its work is vital. With the default lanes
(the shipped ``lanes/data/lanes.yaml``) the type-safety review, cheap to get wrong, goes to the
cheap lane ``zai``;
the security, architecture and performance reviews are vital and go to the ``vital`` pool on
claude-sonnet-4-5, the pool's round robin alternating claude2 and claude3.

A diff larger than a reviewer's context window is split into chunks that fit (at file
boundaries, then hunks, then lines), never truncated: each chunk is a job of its own.

One :class:`Deadline` covers a whole review: splitting, the estimate, sending (in groups of
:data:`GROUP_JOBS`, the deadline checked before each) and the wait. What it catches is in the
report: jobs abandoned unfinished (cancelled; their handles in
:attr:`ReviewReport.abandoned`) and jobs not sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lanes.broker.handle import JobHandle
from lanes.data import package_file
from lanes.dispatch.waiting import Collected
from lanes.kernel.config import Config
from lanes.kernel.errors import JobError, LanesError
from lanes.recipes.ports import RecipeClient
from lanes.recipes.review.diffs import split_diff
from lanes.recipes.review.report import (
    ReviewReport as ReviewReport,  # the public name lives here too
)
from lanes.recipes.review.report import build_report, job_row, late_row, unsent_row
from lanes.recipes.review.reviewers import CHEAP_TAG, Reviewer, configured_reviewers
from lanes.recipes.rows import TIMEOUT
from lanes.router.classifier import estimate_tokens
from lanes.router.decision import Decision

SAMPLE_DIFF = package_file("sample.diff")
RULE_PREFIX = "Criticality: "
FIT_SHARE = 0.8
"""Share of a window a chunk may fill: token estimates are off by up to about 20%."""
GROUP_JOBS = 16
"""Jobs sent per Celery group. A review of up to this many jobs is sent all or nothing; a
larger one in groups of this size, the deadline checked before each."""


class Deadline:
    """The end of a review, on ``time.monotonic``, ``timeout_s`` after ``started`` (default:
    now). Time spent waiting for the operator (:meth:`pause`) is not counted."""

    def __init__(self, timeout_s: float, started: float | None = None) -> None:
        self.timeout_s = timeout_s
        self.started = time.monotonic() if started is None else started
        self.paused_s = 0.0

    def left_s(self) -> float:
        return self.started + self.paused_s + self.timeout_s - time.monotonic()

    def passed(self) -> bool:
        return self.left_s() <= 0

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started - self.paused_s

    def pause(self, action: Callable[[], None]) -> None:
        """Run ``action`` (a question to the operator) off the clock."""
        begun = time.monotonic()
        try:
            action()
        finally:
            self.paused_s += time.monotonic() - begun


def prompt_for(reviewer: Reviewer, part: tuple[int, int] = (1, 1)) -> str:
    """The reviewer's instructions; the diff goes ahead of them (:func:`diff_prefix`)."""
    index, total = part
    which = f" (part {index} of {total}; the other parts go to other jobs)" if total > 1 else ""
    return (
        f"Review the diff above{which} for {reviewer.focus}.\n"
        "List each finding with file, line, severity (high/medium/low) and a concrete fix."
    )


def diff_prefix(diff: str) -> str:
    """The diff as every reviewer of it reads it first: one cacheable prefix, so the
    provider bills it in full once and at its cache-read rate to the other reviewers."""
    return f"The diff under review:\n\n```diff\n{diff}\n```"


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
        "cache_prefix": diff_prefix(diff),
        "prompt": prompt_for(reviewer, part),
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
    framing = diff_prefix("") + prompt_for(reviewer, (99, 99)) + system_for(reviewer)
    overhead = estimate_tokens(framing)
    room = context_window(config, reviewer) - reviewer.max_tokens - overhead
    return max(1, int(room * FIT_SHARE))


def review_jobs(
    config: Config,
    diff: str,
    reviewers: Sequence[Reviewer],
    *,
    project: str | None = None,
    strategy: str | None = None,
    deadline: Deadline | None = None,
) -> list[tuple[Reviewer, dict[str, Any]]]:
    """Every job of a review: each reviewer's chunks of ``diff``, in order; once ``deadline``
    has passed, the reviewers not split yet get none."""
    jobs = []
    for reviewer in reviewers:
        if deadline is not None and deadline.passed():
            break
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


def rule_for(reviewer: Reviewer, decision: Decision | None) -> str:
    """The rule that placed ``reviewer``'s job: its pin and who set it (an agent file, the
    config) when it has one, else the routing rule."""
    pins = [f"{key}: {value}" for key, value in
            (("instance", reviewer.instance), ("model", reviewer.model)) if value]  # fmt: skip
    if not pins:
        return placement_rule(decision)
    origin = "review.reviewers" if reviewer.source == "config" else f"agent file {reviewer.source}"
    return f"pinned by {origin} ({', '.join(pins)})"


@dataclass(frozen=True)
class ReviewEstimate:
    """What a review will cost before it is sent: the sum of its jobs' routed estimates."""

    jobs: int
    cost_usd: float
    lanes: tuple[str, ...]
    """The lanes and pools the jobs are routed to."""

    def line(self) -> str:
        return f"{self.jobs} job(s) on {', '.join(self.lanes)}: estimated cost ${self.cost_usd:.4f}"


def estimate_review(
    client: RecipeClient, jobs: Sequence[tuple[Reviewer, dict[str, Any]]]
) -> ReviewEstimate:
    """Route every job (:meth:`Lanes.route`: nothing is sent) and sum the estimates; a job
    that cannot be routed raises here, before anything is sent."""
    decisions = [client.route(job) for _, job in jobs]
    return ReviewEstimate(
        jobs=len(decisions),
        cost_usd=sum(d.estimated_cost_usd for d in decisions),
        lanes=tuple(sorted({d.instance for d in decisions})),
    )


def approve(
    client: RecipeClient,
    jobs: Sequence[tuple[Reviewer, dict[str, Any]]],
    deadline: Deadline,
    max_cost_usd: float | None,
    on_estimate: Callable[[ReviewEstimate], None] | None,
) -> None:
    """Refuse a review over ``max_cost_usd`` (JobError, nothing sent), then show the estimate
    to ``on_estimate`` (off the clock; it may raise to stop the review)."""
    estimate = estimate_review(client, jobs)
    if max_cost_usd is not None and estimate.cost_usd > max_cost_usd:
        raise JobError(
            f"the review was not sent: {estimate.line()}, over the limit of"
            f" ${max_cost_usd:.4f} (--max-cost); raise the limit or review a smaller change"
        )
    if on_estimate is not None:
        deadline.pause(lambda: on_estimate(estimate))


Sent = list[tuple[Reviewer, JobHandle]]


def send(
    client: RecipeClient, jobs: Sequence[tuple[Reviewer, dict[str, Any]]], deadline: Deadline
) -> tuple[Sent, list[dict[str, Any]]]:
    """Send ``jobs`` in groups of GROUP_JOBS until the deadline: the handles sent, and a
    ``not sent`` row for each job left. A refusal of the first group raises (nothing was
    sent); of a later one, it is the reason on the rows of the jobs left."""
    sent: Sent = []
    for start in range(0, len(jobs), GROUP_JOBS):
        group = jobs[start : start + GROUP_JOBS]
        reason = f"not sent: the review's {deadline.timeout_s:g}s deadline passed first"
        if not deadline.passed():
            try:
                handles = client.submit_group([job for _, job in group])
            except LanesError as exc:
                if not sent:
                    raise
                reason = f"not sent: {exc}"
            else:
                sent.extend(zip([r for r, _ in group], handles, strict=True))
                continue
        return sent, [unsent_row(reviewer, reason) for reviewer, _ in jobs[start:]]
    return sent, []


def wait_until(
    client: RecipeClient, sent: Sent, deadline: Deadline
) -> tuple[list[dict[str, Any]], Collected]:
    """One row per sent job, in order, waited for until the deadline and not a moment more:
    a job not finished then is cancelled (no provider call of it starts after this) and is a
    ``timeout`` row. :class:`NoWorker` (the jobs cancelled) when they wait on a lane no worker
    consumes."""
    reason = f"the review's {deadline.timeout_s:g}s deadline passed first"
    end = time.monotonic() + deadline.left_s()
    got = client.collect([handle for _, handle in sent], end, reason)
    if got.no_worker is not None:
        raise got.no_worker.noting(f"; {len(got.cancelled)} job(s) of the review cancelled")
    rows = []
    for (reviewer, handle), result in zip(sent, got.results, strict=True):
        rule = rule_for(reviewer, handle.decision)
        if result is None:
            late = f"cancelled: job {handle.id} not finished within {deadline.timeout_s:g}s"
            rows.append(late_row(reviewer, handle, rule, late))
        else:
            rows.append(job_row(reviewer, result, rule))
    return rows, got


def fan_out(
    client: RecipeClient,
    diff: str,
    reviewers: Sequence[Reviewer] | None = None,
    *,
    strategy: str | None = None,
    project: str | None = None,
) -> Sent:
    """Submit every job of the review as one Celery group; they run in parallel."""
    chosen = list(reviewers) if reviewers is not None else configured_reviewers(client.config)
    strategy = strategy or client.config.review.strategy
    jobs = review_jobs(client.config, diff, chosen, project=project, strategy=strategy)
    handles = client.submit_group([job for _, job in jobs])
    return [(reviewer, handle) for (reviewer, _), handle in zip(jobs, handles, strict=True)]


def collect(client: RecipeClient, handles: Sent, timeout_s: float) -> list[dict[str, Any]]:
    """One row per job, in order; a failed or late job is a row, not an exception. All jobs
    share one deadline, ``timeout_s`` from now."""
    return wait_until(client, handles, Deadline(timeout_s))[0]


def review(
    client: RecipeClient,
    diff: str,
    *,
    reviewers: Sequence[Reviewer] | None = None,
    strategy: str | None = None,
    project: str | None = None,
    timeout_s: float | None = None,
    title: str = "diff",
    max_cost_usd: float | None = None,
    on_estimate: Callable[[ReviewEstimate], None] | None = None,
    started: float | None = None,
) -> ReviewReport:
    """Fan ``diff`` out to ``reviewers`` (default: the config's), wait, and report.

    ``timeout_s`` (default ``review.timeout_s``) covers everything from ``started`` (a
    ``time.monotonic()`` value; default: now): splitting, routing, sending, waiting. When it
    passes, the report has what finished, the jobs abandoned and those not sent. With
    ``max_cost_usd`` a review whose estimate is larger is refused (JobError, nothing sent);
    ``on_estimate`` is shown the estimate before anything is sent and may raise to stop.
    """
    chosen = list(reviewers) if reviewers is not None else configured_reviewers(client.config)
    deadline = Deadline(timeout_s or client.config.review.timeout_s, started)
    strategy = strategy or client.config.review.strategy
    jobs = review_jobs(
        client.config, diff, chosen, project=project, strategy=strategy, deadline=deadline
    )
    if (max_cost_usd is not None or on_estimate is not None) and not deadline.passed():
        approve(client, jobs, deadline, max_cost_usd, on_estimate)
    sent, unsent = send(client, jobs, deadline)
    waited, got = wait_until(client, sent, deadline)
    abandoned = [handle for (_, handle), row in zip(sent, waited, strict=True)
                 if row["status"] == TIMEOUT]  # fmt: skip
    return build_report(
        title, waited + unsent, chosen, deadline.elapsed_s(), len(diff.encode("utf-8")),
        timeout_s=deadline.timeout_s, abandoned=abandoned, calls_in_flight=got.calls_in_flight,
    )  # fmt: skip


async def areview(client: RecipeClient, diff: str, **options: Any) -> ReviewReport:
    """:func:`review` for asyncio (runs in a thread; the event loop stays free)."""
    return await asyncio.to_thread(lambda: review(client, diff, **options))
