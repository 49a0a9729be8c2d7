"""The ledger's reports: plain reads over a period, one function per report.

Each takes a connection and ``since`` (aware, UTC; see :func:`~lanes.stores.sql.schema.as_utc`).
Cache hits (``cached``) are outcomes without a provider call: they count in ``saved_usd``
and in exports, never in a lane's outcomes, latencies or success rates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, Table, case, false, func, select, true, union

from lanes.stores.ledger import CostLine, Discounts, FallbackRate, LaneStats, TaskOutcome
from lanes.stores.sql.schema import (
    as_utc,
    cost_tracking,
    fallback_events,
    rate_limit_events,
    routing_decisions,
    routing_outcomes,
)

GROUPS = {"model": "model", "instance": "instance", "project": "project", "task-type": "task_type"}
"""``costs(by=...)`` → the column it groups on."""
NONE_KEY = "(none)"
"""The key of rows without a project (or task type)."""

Lane = tuple[str, str]
"""(instance, model)."""


def _ok() -> Any:
    return func.sum(case((routing_outcomes.c.status == "ok", 1), else_=0))


def _per_lane(conn: Connection, stmt: Select[Any]) -> dict[Lane, float]:
    """``stmt`` selects (instance, model, number): the numbers by lane."""
    return {(row[0], row[1]): float(row[2] or 0) for row in conn.execute(stmt)}


def ran(conn: Connection, since: datetime) -> dict[Lane, float]:
    """Jobs that ran a step on each lane since ``since``: decided there, fell back from
    there or ended there (each job once per lane)."""
    d, f, o = routing_decisions.c, fallback_events.c, routing_outcomes.c
    jobs = union(
        select(d.job_id, d.instance, d.model).where(d.at >= since),
        select(f.job_id, f.from_instance, f.from_model).where(f.at >= since),
        select(o.job_id, o.instance, o.model).where(o.at >= since, o.cached == false()),
    ).subquery()
    lane = (jobs.c.instance, jobs.c.model)
    return _per_lane(conn, select(*lane, func.count()).group_by(*lane))


def costs(conn: Connection, since: datetime, by: str) -> list[CostLine]:
    """Spend grouped ``by`` a key of :data:`GROUPS`, largest first; ValueError for others."""
    if by not in GROUPS:
        raise ValueError(f"cannot group costs by {by!r}; use one of {', '.join(GROUPS)}")
    c, o = cost_tracking.c, routing_outcomes.c
    unsettled = func.sum(case((c.settled == false(), c.cost_usd), else_=0.0))
    spent = select(c[GROUPS[by]], func.count(), func.sum(c.cost_usd), unsettled)
    saved = select(o[GROUPS[by]], func.sum(o.cost_saved_usd))
    lines: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for key, calls, cost_usd, unsettled_usd in conn.execute(
        spent.where(c.at >= since).group_by(c[GROUPS[by]])
    ):
        line = lines[key or NONE_KEY]
        line[0] += calls
        line[1] += cost_usd or 0.0
        line[2] += unsettled_usd or 0.0
    for key, saved_usd in conn.execute(
        saved.where(o.at >= since, o.cached == true()).group_by(o[GROUPS[by]])
    ):
        lines[key or NONE_KEY][3] += saved_usd or 0.0
    result = [
        CostLine(key=key, calls=int(n), cost_usd=cost, unsettled_usd=unset, saved_usd=save)
        for key, (n, cost, unset, save) in lines.items()
    ]
    return sorted(result, key=lambda line: (-line.cost_usd, line.key))


def discounts(conn: Connection, since: datetime) -> Discounts:
    """What the batch rate and the prompt cache took off the outcomes since ``since``."""
    o = routing_outcomes.c
    stmt = select(
        func.sum(case((o.batched == true(), 1), else_=0)),
        func.sum(o.batch_saved_usd),
        func.sum(o.prompt_cache_saved_usd),
    ).where(o.at >= since)
    jobs, batch_usd, cache_usd = conn.execute(stmt).one()
    return Discounts(batched_jobs=int(jobs or 0), batch_saved_usd=float(batch_usd or 0.0),
                     prompt_cache_saved_usd=float(cache_usd or 0.0))  # fmt: skip


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q`` quantile (0-1), interpolating between closest ranks; 0 without values."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _latencies(conn: Connection, since: datetime) -> dict[Lane, list[tuple[bool, float]]]:
    o = routing_outcomes.c
    stmt = select(o.instance, o.model, o.status, o.latency_s).where(
        o.at >= since, o.cached == false()
    )
    rows: dict[Lane, list[tuple[bool, float]]] = defaultdict(list)
    for instance, model, status, latency_s in conn.execute(stmt):
        rows[(instance, model)].append((status == "ok", latency_s))
    return rows


def _by_lane(
    conn: Connection,
    since: datetime,
    table: Table,
    value: Any = None,
    lane: tuple[str, str] = ("instance", "model"),
) -> dict[Lane, float]:
    """``value`` (default: the row count) of ``table``'s rows since ``since``, by lane."""
    columns = [table.c[name] for name in lane]
    stmt = select(*columns, func.count() if value is None else value)
    return _per_lane(conn, stmt.where(table.c.at >= since).group_by(*columns))


def stats(conn: Connection, since: datetime) -> list[LaneStats]:
    """How each (instance, model) did since ``since``, sorted by instance and model."""
    decisions = _by_lane(conn, since, routing_decisions)
    fallbacks = _by_lane(conn, since, fallback_events, lane=("from_instance", "from_model"))
    limits = _by_lane(conn, since, rate_limit_events)
    spent = _by_lane(conn, since, cost_tracking, func.sum(cost_tracking.c.cost_usd))
    outcomes, jobs = _latencies(conn, since), ran(conn, since)
    lanes = sorted({*decisions, *fallbacks, *limits, *spent, *outcomes, *jobs})
    return [
        _lane_stats(lane, outcomes.get(lane, []), decisions, fallbacks, limits, spent, jobs)
        for lane in lanes
    ]


def _lane_stats(
    lane: Lane, outcomes: list[tuple[bool, float]], *counts: dict[Lane, float]
) -> LaneStats:
    decisions, fallbacks, limits, spent, jobs = (count.get(lane, 0.0) for count in counts)
    ok = sum(1 for good, _ in outcomes if good)
    latencies = [latency_s for _, latency_s in outcomes]
    return LaneStats(
        instance=lane[0],
        model=lane[1],
        decisions=int(decisions),
        outcomes=len(outcomes),
        ok=ok,
        success_rate=ok / len(outcomes) if outcomes else None,
        p50_latency_s=percentile(latencies, 0.5) if outcomes else None,
        p95_latency_s=percentile(latencies, 0.95) if outcomes else None,
        fallbacks=int(fallbacks),
        fallback_rate=fallbacks / jobs if jobs else 0.0,
        rate_limits=int(limits),
        cost_usd=spent,
    )


def fallback_rates(conn: Connection, since: datetime) -> list[FallbackRate]:
    """Every fallback edge since ``since``, most taken first."""
    f = fallback_events.c
    stmt = (
        select(f.from_instance, f.from_model, f.to_instance, f.reason)
        .where(f.at >= since)
        .order_by(f.at, f.id)
    )
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    last_reason: dict[tuple[str, str, str], str] = {}
    for from_instance, from_model, to_instance, reason in conn.execute(stmt):
        edge = (from_instance, from_model, to_instance)
        counts[edge] += 1
        last_reason[edge] = reason
    jobs = ran(conn, since)
    rates = [
        FallbackRate(
            from_instance=edge[0],
            from_model=edge[1],
            to_instance=edge[2],
            count=count,
            rate=count / (jobs.get(edge[:2]) or count),
            last_reason=last_reason[edge],
        )
        for edge, count in counts.items()
    ]
    return sorted(rates, key=lambda r: (-r.count, r.from_instance, r.from_model, r.to_instance))


def task_outcomes(conn: Connection, since: datetime) -> list[TaskOutcome]:
    """Outcomes per (task type, instance, model, vital) since ``since``. A job whose decision
    is not recorded counts as vital: advice for it then keeps to what vital work may use."""
    o = routing_outcomes.c
    vital = func.coalesce(routing_decisions.c.vital, true())
    group = (o.task_type, o.instance, o.model, vital)
    stmt = (
        select(*group, func.count(), _ok(), func.avg(o.rating), func.sum(o.cost_usd))
        .select_from(
            routing_outcomes.outerjoin(routing_decisions, routing_decisions.c.job_id == o.job_id)
        )
        .where(o.at >= since, o.cached == false())
        .group_by(*group)
        .order_by(*group)
    )
    return [
        TaskOutcome(
            task_type=task_type,
            instance=instance,
            model=model,
            vital=bool(is_vital),
            jobs=jobs,
            success_rate=ok / jobs,
            rating=None if rating is None else float(rating),
            avg_cost_usd=cost_usd / jobs,
            cost_usd=cost_usd,
        )
        for task_type, instance, model, is_vital, jobs, ok, rating, cost_usd in conn.execute(stmt)
    ]


_DECISION = ("strategy", "complexity", "vital", "difficulty", "estimated_cost_usd", "reasons")
_RENAMED = {"at": "ended_at", "user_name": "user"}


def export(conn: Connection, since: datetime) -> list[dict[str, Any]]:
    """One JSON-ready row per job that ended since ``since`` (times as ISO 8601 UTC): the
    outcome's columns, and its decision's (``decided_*``, ``strategy``...; None without one)."""
    o, d = routing_outcomes, routing_decisions
    decided: list[Any] = [d.c.at.label("decided_at"), d.c.instance.label("decided_instance")]
    decided += [d.c.model.label("decided_model"), *(d.c[name] for name in _DECISION)]
    stmt = (
        select(*(col for col in o.c if col.name != "id"), *decided, d.c.prompt)
        .select_from(o.outerjoin(d, d.c.job_id == o.c.job_id))
        .where(o.c.at >= since)
        .order_by(o.c.at, o.c.job_id)
    )
    return [
        {_RENAMED.get(name, name): _plain(value) for name, value in row._asdict().items()}
        for row in conn.execute(stmt)
    ]


def _plain(value: Any) -> Any:
    return as_utc(value).isoformat() if isinstance(value, datetime) else value
