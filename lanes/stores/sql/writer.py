"""Applying a batch of ledger events in one transaction, each at most once.

Every event is an ``INSERT ... ON CONFLICT DO NOTHING`` on its identity, except a cost, which
settles its call's row (``DO UPDATE ... WHERE NOT settled``: the first settlement wins, and a
call replayed after it finds the row and changes nothing). An outcome feeds
``model_performance`` only when its own row was inserted by this batch, so a replayed outcome
never counts twice.

Each table gets one statement per batch (many rows, ``RETURNING`` what it wrote), in one
global order (table, then identity): two batches that overlap, in two processes at once, then
wait on each other's rows in the same order and never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from sqlalchemy import Connection, Table, and_, false, select, true, update
from sqlalchemy.dialects import postgresql, sqlite

from lanes.stores.ledger import (
    CallEvent,
    CostEvent,
    DecisionEvent,
    LedgerEvent,
    OutcomeEvent,
    RateLimitEvent,
)
from lanes.stores.sql.schema import (
    cost_tracking,
    fallback_events,
    model_performance,
    rate_limit_events,
    routing_decisions,
    routing_outcomes,
    utc,
)

PerfKey = tuple[str, str, str]
"""(instance, model, task_type): one row of ``model_performance``."""


@dataclass(frozen=True)
class Acc:
    """Decayed accumulators, worth their face value at ``updated_at`` (epoch seconds).

    An observation made at ``t`` weighs ``0.5 ** ((now - t) / half_life_s)`` at ``now``.
    :meth:`merge` is exact whatever the order observations arrive in (a late one is decayed
    to the newer time rather than the sum growing back), so batches applied in any order, by
    any number of processes, leave the same numbers. A negative ``ratings`` term takes back
    a rating added earlier (re-rating a job).
    """

    samples: float = 0.0
    successes: float = 0.0
    latency_sum: float = 0.0
    cost_sum: float = 0.0
    rating_sum: float = 0.0
    ratings: float = 0.0
    updated_at: float = 0.0

    def at(self, when: float, half_life_s: float) -> Acc:
        """These accumulators decayed (or, for ``when`` in the past, grown) to ``when``."""
        factor = 0.5 ** ((when - self.updated_at) / half_life_s)
        return Acc(
            samples=self.samples * factor,
            successes=self.successes * factor,
            latency_sum=self.latency_sum * factor,
            cost_sum=self.cost_sum * factor,
            rating_sum=self.rating_sum * factor,
            ratings=self.ratings * factor,
            updated_at=when,
        )

    def merge(self, other: Acc, half_life_s: float) -> Acc:
        when = max(self.updated_at, other.updated_at)
        mine, theirs = self.at(when, half_life_s), other.at(when, half_life_s)
        return Acc(
            samples=mine.samples + theirs.samples,
            successes=mine.successes + theirs.successes,
            latency_sum=mine.latency_sum + theirs.latency_sum,
            cost_sum=mine.cost_sum + theirs.cost_sum,
            rating_sum=mine.rating_sum + theirs.rating_sum,
            ratings=mine.ratings + theirs.ratings,
            updated_at=when,
        )


ACC_FIELDS = tuple(field.name for field in fields(Acc))


def insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which knows ``ON CONFLICT``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def add_performance(conn: Connection, key: PerfKey, acc: Acc, half_life_s: float) -> None:
    """Fold ``acc`` into the ``model_performance`` row of ``key`` (locked while it is read)."""
    names = dict(zip(("instance", "model", "task_type"), key, strict=True))
    row_of = and_(*(model_performance.c[name] == value for name, value in names.items()))
    empty = {**names, **asdict(Acc(updated_at=acc.updated_at))}
    conn.execute(insert(conn, model_performance).on_conflict_do_nothing(), empty)
    columns = [model_performance.c[name] for name in ACC_FIELDS]
    old = Acc(**conn.execute(select(*columns).where(row_of).with_for_update()).one()._asdict())
    merged = asdict(old.merge(acc, half_life_s))
    conn.execute(update(model_performance).where(row_of).values(**merged))


def _returned(
    conn: Connection, stmt: postgresql.Insert | sqlite.Insert, rows: list[dict[str, Any]], key: str
) -> list[Any]:
    """Run ``stmt`` over ``rows`` in one statement batch; the ``key`` of each row it inserted
    or updated (``ON CONFLICT`` leaves the others alone). Counted with ``RETURNING``: drivers
    do not agree on ``rowcount`` here (psycopg gives -1)."""
    if not rows:
        return []
    return [row[0] for row in conn.execute(stmt.returning(stmt.table.c[key]), rows).all()]


def _unique(events: Sequence[LedgerEvent], identity: Any) -> list[Any]:
    """``events`` once per identity (the first), in the one order every batch writes in: a
    statement may not touch a row twice, and overlapping batches lock rows in one order."""
    seen: dict[Any, LedgerEvent] = {}
    for event in events:
        seen.setdefault(identity(event), event)
    return [seen[key] for key in sorted(seen)]


def _call_id(event: CallEvent | CostEvent | RateLimitEvent) -> tuple[str, int, int, int]:
    return (event.job_id, event.step, event.attempt, event.call)


CALL_ID = ["job_id", "step", "attempt", "call"]


def _row(event: LedgerEvent, *drop: str) -> dict[str, Any]:
    row = event.model_dump(exclude={"kind", "user", "at", *drop})
    return {**row, "at": utc(event.at), "user_name": event.user}


def _decisions(conn: Connection, events: list[DecisionEvent]) -> int:
    stmt = insert(conn, routing_decisions).on_conflict_do_nothing(index_elements=["job_id"])
    return len(_returned(conn, stmt, [_row(e) for e in events], "id"))


def _call_row(event: CallEvent) -> dict[str, Any]:
    row = {**_row(event), "day": utc(event.at).date(), "cost_usd": event.reserved_usd}
    row.update(settled=False, input_tokens=0, output_tokens=0, ok=None)
    return row


def _cost_row(event: CostEvent, call: CallEvent | None) -> dict[str, Any]:
    """The settled row of a call. Without its call in the batch (drained before, lost, or
    not yet drained) the reservation is unknown here and taken to be the cost: if the call's
    row exists, it keeps its own."""
    reserved = call.reserved_usd if call is not None else event.cost_usd
    row = {**_row(event), "day": utc(event.at).date(), "reserved_usd": reserved}
    row["settled"] = True
    return row


def _cost_tracking(conn: Connection, calls: list[CallEvent], costs: list[CostEvent]) -> int:
    """One statement for every call row of the batch, in identity order (a call and its cost
    in the same batch make one settled row): a call's row is inserted if new; a cost settles
    the row unless it is settled already (the first settlement wins, and a call replayed
    after it changes nothing)."""
    started = {_call_id(e): e for e in calls}
    ended = {_call_id(e): e for e in costs}
    rows = [
        _cost_row(ended[key], started.get(key)) if key in ended else _call_row(started[key])
        for key in sorted(started.keys() | ended.keys())
    ]
    settle = {"cost_usd", "input_tokens", "output_tokens", "ok", "settled"}
    stmt = insert(conn, cost_tracking)
    stmt = stmt.on_conflict_do_update(
        index_elements=CALL_ID,
        set_={name: stmt.excluded[name] for name in settle},
        where=and_(cost_tracking.c.settled == false(), stmt.excluded.settled == true()),
    )
    return len(_returned(conn, stmt, rows, "id"))


def _rate_limits(conn: Connection, events: list[RateLimitEvent]) -> int:
    stmt = insert(conn, rate_limit_events).on_conflict_do_nothing(index_elements=CALL_ID)
    return len(_returned(conn, stmt, [_row(e) for e in events], "id"))


def _outcomes(conn: Connection, events: list[OutcomeEvent]) -> tuple[list[OutcomeEvent], int]:
    """Insert the outcomes and the fallbacks of those that are new; the new ones, and how
    many fallback rows were inserted."""
    rows = [{**_row(e, "fallbacks"), "fallbacks": len(e.fallbacks)} for e in events]
    stmt = insert(conn, routing_outcomes).on_conflict_do_nothing(index_elements=["job_id"])
    new = set(_returned(conn, stmt, rows, "job_id"))
    fresh = [e for e in events if e.job_id in new]
    fallbacks = [
        {**fallback.model_dump(), "job_id": e.job_id, "at": utc(e.at), "task_type": e.task_type,
         "project": e.project, "user_name": e.user}
        for e in fresh
        for fallback in sorted(e.fallbacks, key=lambda f: f.to_step)
    ]  # fmt: skip
    stmt = insert(conn, fallback_events).on_conflict_do_nothing(
        index_elements=["job_id", "to_step"]
    )
    return fresh, len(_returned(conn, stmt, fallbacks, "id"))


def outcome_acc(event: OutcomeEvent) -> Acc:
    return Acc(
        samples=1.0,
        successes=1.0 if event.status == "ok" else 0.0,
        latency_sum=event.latency_s,
        cost_sum=event.cost_usd,
        updated_at=event.at,
    )


def outcome_lessons(event: OutcomeEvent) -> list[tuple[PerfKey, Acc]]:
    """What one outcome teaches: a sample where the job ended, and a failed sample for each
    (instance, model) it fell back from (the lane failed the job there, even when another
    lane then saved it; it adds no latency or cost, which ``stats`` reads from the outcomes)."""
    lessons = [((event.instance, event.model, event.task_type), outcome_acc(event))]
    for fallback in event.fallbacks:
        failed = Acc(samples=1.0, successes=0.0, latency_sum=0.0, cost_sum=0.0,
                     updated_at=event.at)  # fmt: skip
        lessons.append(((fallback.from_instance, fallback.from_model, event.task_type), failed))
    return lessons


EVENT_KINDS = (DecisionEvent, CallEvent, CostEvent, RateLimitEvent, OutcomeEvent)


def write_batch(conn: Connection, events: Sequence[LedgerEvent], half_life_s: float) -> int:
    """Apply ``events`` on ``conn`` (inside its transaction), one statement per table; returns
    rows inserted or settled. Cache hits are recorded but teach ``model_performance`` nothing."""
    kinds: dict[type, list[Any]] = {kind: [] for kind in EVENT_KINDS}
    for event in events:
        kinds[type(event)].append(event)
    by_job = lambda event: event.job_id  # noqa: E731
    written = _decisions(conn, _unique(kinds[DecisionEvent], by_job))
    written += _cost_tracking(
        conn, _unique(kinds[CallEvent], _call_id), _unique(kinds[CostEvent], _call_id)
    )
    written += _rate_limits(conn, _unique(kinds[RateLimitEvent], _call_id))
    fresh, fallbacks = _outcomes(conn, _unique(kinds[OutcomeEvent], by_job))
    written += len(fresh) + fallbacks
    learned: dict[PerfKey, Acc] = {}
    for event in fresh:
        if event.cached:
            continue
        for key, acc in outcome_lessons(event):
            learned[key] = learned[key].merge(acc, half_life_s) if key in learned else acc
    for key in sorted(learned):
        add_performance(conn, key, learned[key], half_life_s)
    return written
