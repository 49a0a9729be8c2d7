"""A job's row: the one place a :class:`~lanes.broker.result.Result` becomes what a report
shows of it (the README's "Words" names the reports and the fields). A report adds only what
is its own: the batch line's ``id``, the target, the step, the reviewer and rule.

Figures are exact (what the ledger holds): reports round their totals, not the rows. A job
without a result has a row too, its figures zero: ``timeout`` (sent, not finished by its
deadline, cancelled; ``lane`` and ``model`` as routed), ``not sent`` (no ``job_id``) or
``failed`` (it ended with a result lanes could not read). ``lane`` and ``model`` are ``""``
when unknown, as in a ``Result``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lanes.broker.handle import JobHandle
    from lanes.broker.result import Result

Row = dict[str, Any]

FIELDS = ("job_id", "lane", "model", "status", "text", "error", "cost_usd", "input_tokens",
          "output_tokens", "latency_s", "waited_s", "deliveries", "fallbacks", "cached",
          "cost_saved_usd", "batched", "simulated")  # fmt: skip
"""Every row's fields, in the order a row lists them."""

TIMEOUT = "timeout"
NOT_SENT = "not sent"


def result_row(result: Result) -> Row:
    """A finished job's row (``ok`` or ``failed``). ``fallbacks`` counts the steps it fell
    back from; ``waited_s`` (re-queued for capacity or a cooldown, apart from ``latency_s``),
    ``deliveries``, ``cached``, ``cost_saved_usd``, ``batched`` and ``simulated`` as on the
    result."""
    return {
        "job_id": result.job_id,
        "lane": result.instance,
        "model": result.model,
        "status": result.status,
        "text": result.text,
        "error": result.error,
        "cost_usd": result.cost_usd,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "latency_s": result.latency_s,
        "waited_s": result.waited_s,
        "deliveries": result.deliveries,
        "fallbacks": len(result.fallbacks),
        "cached": result.cached,
        "cost_saved_usd": result.cost_saved_usd,
        "batched": result.batched,
        "simulated": result.simulated,
    }


def late_row(handle: JobHandle | None, error: str) -> Row:
    """A job sent but not finished by its deadline (and cancelled): its lane and model as
    routed, when ``handle`` says (None: nothing known of it but that it was late)."""
    if handle is None:
        return _empty_row(TIMEOUT, error, None, "", "")
    decision = handle.decision
    lane = handle.instance or (decision.instance if decision else "")
    return _empty_row(TIMEOUT, error, handle.id, lane, decision.model if decision else "")


def unsent_row(error: str) -> Row:
    """A job that was never sent: no job id, no lane."""
    return _empty_row(NOT_SENT, error, None, "", "")


def unread_row(job_id: str, error: str) -> Row:
    """A job that ended with a result lanes could not read: ``failed``, ``error`` says why."""
    return _empty_row("failed", error, job_id, "", "")


def job_rows(
    results: Sequence[Result | None], handles: Sequence[JobHandle], late_error: str
) -> list[Row]:
    """One row per job, in order: its result's, or a ``timeout`` row (``late_error``) for a
    job without one. ``handles`` are the jobs' handles in the same order (fewer or none: the
    late rows say nothing of where those jobs went)."""
    known: list[JobHandle | None] = [*handles, *[None] * (len(results) - len(handles))]
    return [
        result_row(result) if result is not None else late_row(handle, late_error)
        for result, handle in zip(results, known, strict=False)
    ]


def _empty_row(status: str, error: str, job_id: str | None, lane: str, model: str) -> Row:
    return {
        "job_id": job_id,
        "lane": lane,
        "model": model,
        "status": status,
        "text": "",
        "error": error,
        "cost_usd": 0.0,
        "input_tokens": 0,
        "output_tokens": 0,
        "latency_s": 0.0,
        "waited_s": 0.0,
        "deliveries": 0,
        "fallbacks": 0,
        "cached": False,
        "cost_saved_usd": 0.0,
        "batched": False,
        "simulated": False,
    }
