"""The money and memory reports behind ``lanes cost``, ``stats``, ``fallback`` and
``budget``: periods, projections and downgrade advice, computed from the ledger's rows.

Downgrade advice compares, per task type, each (instance, model) that did the work with the
cheaper ones that did the same kind of work in the same window: a cheaper one qualifies when
it has at least :data:`MIN_JOBS` outcomes, a success rate no more than
:data:`SUCCESS_SLACK` below, and (where both were rated) a mean rating no more than
:data:`RATING_SLACK` below. The saving is what the dearer one's jobs would have cost there,
per 30 days; advice saving less than :data:`MIN_SAVING_USD_PER_MONTH` is left out. Vital work
is advised apart, and only towards what routing would send it to: never a cheap lane, never a
model below the vital tier (``refusal`` says why a target is refused).

CSV exports go through :func:`csv_cell`, which keeps a spreadsheet from running what a
project or user name (or any other text) smuggles in as a formula.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from lanes.stores.ledger import TaskOutcome

PERIODS = ("day", "week", "month")
GROUPINGS = ("model", "instance", "project", "task-type")
MIN_JOBS = 5
SUCCESS_SLACK = 0.02
RATING_SLACK = 0.5
MONTH_DAYS = 30.0
MIN_SAVING_USD_PER_MONTH = 0.01
"""Downgrade advice saving less than a cent a month is noise, not advice."""
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A text cell starting with one of these is a formula to a spreadsheet (OWASP's list)."""


def period_start(period: str, now: datetime, zone: str) -> datetime:
    """Start of the current calendar day, week (Monday) or month in ``zone`` (tz-aware)."""
    local = now.astimezone(ZoneInfo(zone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return midnight
    if period == "week":
        return midnight - timedelta(days=midnight.weekday())
    if period == "month":
        return midnight.replace(day=1)
    raise ValueError(f"unknown period {period!r}; use one of {', '.join(PERIODS)}")


def monthly_projection(spent_usd: float, since: datetime, now: datetime) -> float:
    """``spent_usd`` at the pace it was spent since ``since``, over 30 days (at least one
    hour of pace, so a first minute's spend is not multiplied by 43,200)."""
    elapsed_days = max((now - since).total_seconds() / 86400, 1 / 24)
    return spent_usd / elapsed_days * MONTH_DAYS


@dataclass(frozen=True)
class Downgrade:
    task_type: str
    from_instance: str
    from_model: str
    to_instance: str
    to_model: str
    jobs: int
    saving_usd_per_month: float
    success_rate: float
    """The cheaper option's measured success rate."""
    vital: bool = False

    def sentence(self) -> str:
        work = f"vital {self.task_type}" if self.vital else self.task_type
        return (
            f"route {work} from {self.from_instance}/{self.from_model} to "
            f"{self.to_instance}/{self.to_model}: save ${self.saving_usd_per_month:.2f}/month "
            f"at success rate >= {self.success_rate:.0%}"
        )


Refusal = Callable[[str, str], str | None]
"""Why routing never sends vital work to (instance, model), or None when it may."""


def downgrades(
    rows: Sequence[TaskOutcome], window_days: float, refusal: Refusal
) -> list[Downgrade]:
    """Downgrade advice from one window's outcomes (largest saving first)."""
    found = []
    for row in rows:
        best = _cheapest_peer(row, rows, refusal)
        if best is None:
            continue
        saving = (row.avg_cost_usd - best.avg_cost_usd) * row.jobs * MONTH_DAYS / window_days
        if saving < MIN_SAVING_USD_PER_MONTH:
            continue
        found.append(
            Downgrade(
                task_type=row.task_type,
                from_instance=row.instance,
                from_model=row.model,
                to_instance=best.instance,
                to_model=best.model,
                jobs=row.jobs,
                saving_usd_per_month=saving,
                success_rate=best.success_rate,
                vital=row.vital,
            )
        )
    return sorted(found, key=lambda d: -d.saving_usd_per_month)


def _cheapest_peer(
    row: TaskOutcome, rows: Sequence[TaskOutcome], refusal: Refusal
) -> TaskOutcome | None:
    peers = [
        peer for peer in rows
        if peer.task_type == row.task_type
        and (peer.instance, peer.model) != (row.instance, row.model)
        and peer.avg_cost_usd < row.avg_cost_usd
        and _as_good(peer, row)
        and not (row.vital and refusal(peer.instance, peer.model))
    ]  # fmt: skip
    return min(peers, key=lambda p: p.avg_cost_usd, default=None)


def _as_good(peer: TaskOutcome, row: TaskOutcome) -> bool:
    if peer.jobs < MIN_JOBS or peer.success_rate < row.success_rate - SUCCESS_SLACK:
        return False
    if peer.rating is not None and row.rating is not None:
        return peer.rating >= row.rating - RATING_SLACK
    return True


def csv_cell(value: Any) -> Any:
    """An export value as a CSV cell: numbers lanes wrote stay numbers, None is empty, lists
    and objects are JSON, and text that a spreadsheet would evaluate (starting with ``=``,
    ``+``, ``-``, ``@``, a tab or a carriage return) gets a leading ``'``, which makes it
    plain text (``=HYPERLINK(...)`` is shown as written, never run)."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    cell = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell
