"""The ledger port on SQL (SQLite or PostgreSQL, through SQLAlchemy Core).

Database errors leave this module as :class:`~lanes.kernel.errors.InfrastructureError`, naming
the database (password masked) and what to check, like every other store that cannot reach
its backend.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, false, func, select, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from lanes.kernel.config.models import LearningSpec
from lanes.kernel.errors import InfrastructureError, JobError
from lanes.kernel.redact import mask_url_secrets
from lanes.stores.ledger import (
    BudgetLimitRow,
    CostLine,
    Discounts,
    FallbackRate,
    IssuedKey,
    KeyOwner,
    KeyRow,
    LaneStats,
    LedgerEvent,
    PerformanceRow,
    TaskOutcome,
    Unsettled,
    check_key_owner,
)
from lanes.stores.sql import keys as sql_keys
from lanes.stores.sql import reports
from lanes.stores.sql.schema import (
    WRITE,
    as_utc,
    budget_tracking,
    cost_tracking,
    fallback_events,
    model_performance,
    rate_limit_events,
    routing_decisions,
    routing_outcomes,
    utc,
)
from lanes.stores.sql.writer import ACC_FIELDS, Acc, add_performance, insert, write_batch

_TINY = 1e-9
"""Decayed weights below this are nothing (a rating taken back leaves float dust)."""
_WHERE = {
    "instance": cost_tracking.c.instance,
    "project": cost_tracking.c.project,
    "user": cost_tracking.c.user_name,
}


def shown_url(engine: Engine) -> str:
    """The engine's URL as it may be printed: credentials masked."""
    return mask_url_secrets(engine.url.render_as_string(hide_password=False))


def fix_for(url: str) -> str:
    """What to check when the database at ``url`` cannot be used."""
    if url.startswith("sqlite"):
        return (
            "is its directory writable and the file a lanes ledger? "
            "set database_url (or LANES_DATABASE_URL) to another one"
        )
    return (
        "is PostgreSQL running, and does the database exist? "
        "set database_url (or LANES_DATABASE_URL) to a reachable one"
    )


@contextmanager
def db_errors(url: str) -> Iterator[None]:
    """Translate the database's errors into InfrastructureError for ``url`` (shown URL).

    Rows the database refuses (integrity, data) are bugs, not an unusable database: those
    pass through untranslated."""
    try:
        yield
    except (IntegrityError, DataError):
        raise
    except DBAPIError as exc:
        detail = str(exc.orig or exc).strip().splitlines()[0]
        message = f"ledger database {url} is unusable: {detail}; {fix_for(url)}"
        raise InfrastructureError(mask_url_secrets(message)) from exc


def _epoch(value: datetime) -> float:
    return as_utc(value).timestamp()


class SqlLedger:
    """:class:`~lanes.stores.ledger.Ledger` on one SQLAlchemy engine.

    Thread-safe (the engine pools connections); build one per process with
    :func:`lanes.stores.sql.open_ledger`, as engines do not survive a fork.
    """

    def __init__(self, engine: Engine, learning: LearningSpec) -> None:
        self._engine = engine
        self._half_life_s = learning.half_life_s
        self.url = shown_url(engine)

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with db_errors(self.url), self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with db_errors(self.url), self._engine.connect() as conn:
            conn.execution_options(**WRITE)
            with conn.begin():
                yield conn

    def write(self, events: Sequence[LedgerEvent]) -> int:
        if not events:
            return 0
        with self._writing() as conn:
            return write_batch(conn, events, self._half_life_s)

    def rate(self, job_id: str, rating: int, at: float) -> None:
        """Store ``rating`` on the job's outcome and fold it into its lane's performance; a
        second rating of one job replaces the first (which is taken back, decayed)."""
        o = routing_outcomes.c
        found = select(o.instance, o.model, o.task_type, o.cached, o.rating, o.rated_at)
        with self._writing() as conn:
            row = conn.execute(found.where(o.job_id == job_id).with_for_update()).first()
            if row is None:
                raise JobError(
                    f"no finished job {job_id!r} in the ledger; `lanes export` lists the ids "
                    "of finished jobs (a job that just ended may take a second to arrive)"
                )
            changed = {"rating": rating, "rated_at": utc(at)}
            conn.execute(update(routing_outcomes).where(o.job_id == job_id).values(changed))
            if row.cached:
                return  # a cache hit teaches model_performance nothing, its rating included
            acc = Acc(rating_sum=rating, ratings=1.0, updated_at=at)
            if row.rating is not None:
                undo = Acc(rating_sum=-row.rating, ratings=-1.0, updated_at=_epoch(row.rated_at))
                acc = acc.merge(undo, self._half_life_s)
            add_performance(conn, (row.instance, row.model, row.task_type), acc, self._half_life_s)

    def performance(self) -> list[PerformanceRow]:
        """Every learned (instance, model, task type), decayed to now. ``latency_s`` and
        ``cost_usd`` are decay-weighted means per job."""
        now = time.time()
        with self._reading() as conn:
            rows = conn.execute(select(model_performance)).all()
        return [self._performance_row(row._mapping, now) for row in rows]

    def _performance_row(self, row: Any, now: float) -> PerformanceRow:
        stored = Acc(**{name: row[name] for name in ACC_FIELDS})
        acc = stored.at(max(now, stored.updated_at), self._half_life_s)
        samples = acc.samples if acc.samples > _TINY else 0.0
        ratings = acc.ratings if acc.ratings > _TINY else 0.0
        return PerformanceRow(
            instance=row["instance"],
            model=row["model"],
            task_type=row["task_type"],
            samples=samples,
            successes=acc.successes,
            latency_s=acc.latency_sum / samples if samples else 0.0,
            cost_usd=acc.cost_sum / samples if samples else 0.0,
            ratings=ratings,
            rating=acc.rating_sum / ratings if ratings else None,
            updated_at=acc.updated_at,
        )

    def spend_since(self, since: datetime, **where: Any) -> float:
        unknown = sorted(set(where) - set(_WHERE))
        if unknown:
            raise ValueError(
                f"cannot filter spend by {', '.join(unknown)}; use {', '.join(_WHERE)}"
            )
        c = cost_tracking.c
        stmt = select(func.coalesce(func.sum(c.cost_usd), 0.0)).where(c.at >= as_utc(since))
        for name, value in where.items():
            if value is not None:
                stmt = stmt.where(_WHERE[name] == value)
        with self._reading() as conn:
            return float(conn.execute(stmt).scalar_one())

    def unsettled_since(self, since: datetime) -> Unsettled:
        c = cost_tracking.c
        stmt = select(func.count(), func.coalesce(func.sum(c.reserved_usd), 0.0)).where(
            c.at >= as_utc(since), c.settled == false()
        )
        with self._reading() as conn:
            calls, reserved_usd = conn.execute(stmt).one()
        return Unsettled(calls=calls, reserved_usd=float(reserved_usd))

    # -- reports -------------------------------------------------------------------------------
    def costs(self, since: datetime, by: str) -> list[CostLine]:
        with self._reading() as conn:
            return reports.costs(conn, as_utc(since), by)

    def discounts(self, since: datetime) -> Discounts:
        with self._reading() as conn:
            return reports.discounts(conn, as_utc(since))

    def stats(self, since: datetime) -> list[LaneStats]:
        with self._reading() as conn:
            return reports.stats(conn, as_utc(since))

    def fallback_rates(self, since: datetime) -> list[FallbackRate]:
        with self._reading() as conn:
            return reports.fallback_rates(conn, as_utc(since))

    def task_outcomes(self, since: datetime) -> list[TaskOutcome]:
        with self._reading() as conn:
            return reports.task_outcomes(conn, as_utc(since))

    def export(self, since: datetime) -> list[dict[str, Any]]:
        with self._reading() as conn:
            return reports.export(conn, as_utc(since))

    # -- budgets and resets --------------------------------------------------------------------
    def budget_limits(self) -> list[BudgetLimitRow]:
        stmt = select(budget_tracking).order_by(budget_tracking.c.budget_id)
        with self._reading() as conn:
            return [BudgetLimitRow(**row._asdict()) for row in conn.execute(stmt)]

    def set_budget_limit(self, row: BudgetLimitRow) -> None:
        with self._writing() as conn:
            stmt = insert(conn, budget_tracking)
            changed = {name: stmt.excluded[name] for name in BudgetLimitRow.model_fields}
            del changed["budget_id"]
            conn.execute(
                stmt.on_conflict_do_update(index_elements=["budget_id"], set_=changed),
                row.model_dump(),
            )

    def reset_stats(self) -> None:
        forget = (routing_decisions, routing_outcomes, fallback_events, rate_limit_events)
        with self._writing() as conn:
            for table in (*forget, model_performance):
                conn.execute(delete(table))

    # -- API keys ----------------------------------------------------------------------------
    def create_key(self, project: str, user: str | None, name: str | None, at: float) -> IssuedKey:
        check_key_owner(project, user, name)  # before the transaction takes the write lock
        with self._writing() as conn:
            return sql_keys.create(conn, project, user, name, at)

    def key_owner(self, key: str) -> KeyOwner | None:
        with self._reading() as conn:
            return sql_keys.owner(conn, key)

    def keys(self) -> list[KeyRow]:
        with self._reading() as conn:
            return sql_keys.listing(conn)

    def revoke_key(self, key_id: str, at: float) -> bool:
        with self._writing() as conn:
            return sql_keys.revoke(conn, key_id, at)

    def close(self) -> None:
        self._engine.dispose()
