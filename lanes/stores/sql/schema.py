"""The ledger's tables (SQLAlchemy Core), as the newest migration leaves them.

The migrations in :mod:`lanes.stores.sql.migrations` create these tables (and the report
views); this module is what the code reads and writes through, and a test checks that the
two agree. Times are UTC: ``at`` is a timestamp, ``day`` the UTC date of ``at`` (so views
group by day without date functions, which differ between SQLite and PostgreSQL).
``user`` is reserved in PostgreSQL, so the caller's user is ``user_name``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

METADATA = MetaData()

SQLITE_BEGIN = "lanes_sqlite_begin"
"""Execution option: how a SQLite transaction begins (``DEFERRED`` unless it says)."""
WRITE: dict[str, Any] = {SQLITE_BEGIN: "IMMEDIATE"}
"""Execution options of a connection that will write: on SQLite its transaction starts with
``BEGIN IMMEDIATE``, taking the write lock (waiting up to the busy timeout) before its first
read, so a read-then-write transaction never fails with "database is locked" midway."""


def utc(at: float) -> datetime:
    """Epoch seconds as the aware UTC datetime the ``at`` columns hold."""
    return datetime.fromtimestamp(at, UTC)


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is taken to be UTC already (SQLite hands them back
    naive, and a caller's naive ``since`` means UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _id() -> Column[int]:
    # BIGSERIAL on PostgreSQL; SQLite's rowid alias must be exactly INTEGER PRIMARY KEY.
    return Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


def _who() -> list[Column[Any]]:
    return [Column("project", String), Column("user_name", String)]


def _call_id() -> list[Column[Any]]:
    """The identity of one provider call, and where it ran."""
    return [
        Column("job_id", String, nullable=False),
        Column("step", Integer, nullable=False),
        Column("attempt", Integer, nullable=False),
        Column("call", Integer, nullable=False),
        Column("instance", String, nullable=False),
        Column("model", String, nullable=False),
        Column("task_type", String, nullable=False),
        Column("at", DateTime(timezone=True), nullable=False, index=True),
    ]


routing_decisions = Table(
    "routing_decisions",
    METADATA,
    _id(),
    Column("job_id", String, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("instance", String, nullable=False),
    Column("model", String, nullable=False),
    Column("strategy", String, nullable=False),
    Column("task_type", String, nullable=False),
    Column("complexity", String, nullable=False),
    Column("vital", Boolean, nullable=False),
    Column("difficulty", Float, nullable=False),
    Column("estimated_cost_usd", Float, nullable=False),
    Column("reasons", JSON, nullable=False),
    *_who(),
    Column("prompt", Text),
    UniqueConstraint("job_id", name="uq_routing_decisions_job"),
)

routing_outcomes = Table(
    "routing_outcomes",
    METADATA,
    _id(),
    Column("job_id", String, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("status", String, nullable=False),
    Column("instance", String, nullable=False),
    Column("model", String, nullable=False),
    Column("step", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("task_type", String, nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("latency_s", Float, nullable=False),
    Column("waited_s", Float, nullable=False),
    Column("fallbacks", Integer, nullable=False),
    Column("cached", Boolean, nullable=False),
    Column("cost_saved_usd", Float, nullable=False),
    Column("batched", Boolean, nullable=False, server_default=false()),
    Column("batch_saved_usd", Float, nullable=False, server_default="0"),
    Column("prompt_cache_saved_usd", Float, nullable=False, server_default="0"),
    Column("error", Text),
    *_who(),
    Column("output", Text),
    Column("rating", Integer),
    Column("rated_at", DateTime(timezone=True)),
    UniqueConstraint("job_id", name="uq_routing_outcomes_job"),
)

cost_tracking = Table(
    "cost_tracking",
    METADATA,
    _id(),
    *_call_id(),
    *_who(),
    Column("day", Date, nullable=False, index=True),
    Column("reserved_usd", Float, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("settled", Boolean, nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("ok", Boolean),
    UniqueConstraint("job_id", "step", "attempt", "call", name="uq_cost_tracking_call"),
)
"""One row per provider call. Until its cost arrives a call is unsettled and ``cost_usd``
holds its reservation, so ``SUM(cost_usd)`` is always the best known spend."""

model_performance = Table(
    "model_performance",
    METADATA,
    Column("instance", String, primary_key=True),
    Column("model", String, primary_key=True),
    Column("task_type", String, primary_key=True),
    Column("samples", Float, nullable=False),
    Column("successes", Float, nullable=False),
    Column("latency_sum", Float, nullable=False),
    Column("cost_sum", Float, nullable=False),
    Column("rating_sum", Float, nullable=False),
    Column("ratings", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
"""Accumulators decayed to ``updated_at`` (epoch seconds) by the learning half-life."""

budget_tracking = Table(
    "budget_tracking",
    METADATA,
    Column("budget_id", String, primary_key=True),
    Column("scope", String, nullable=False),
    Column("name", String),
    Column("period", String, nullable=False),
    Column("limit_usd", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

fallback_events = Table(
    "fallback_events",
    METADATA,
    _id(),
    Column("job_id", String, nullable=False),
    Column("to_step", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("from_instance", String, nullable=False),
    Column("from_model", String, nullable=False),
    Column("to_instance", String, nullable=False),
    Column("reason", Text, nullable=False),
    Column("task_type", String, nullable=False),
    *_who(),
    UniqueConstraint("job_id", "to_step", name="uq_fallback_events_step"),
)

rate_limit_events = Table(
    "rate_limit_events",
    METADATA,
    _id(),
    *_call_id(),
    *_who(),
    Column("cooldown_s", Float, nullable=False),
    Column("reason", Text, nullable=False),
    UniqueConstraint("job_id", "step", "attempt", "call", name="uq_rate_limit_events_call"),
)

api_keys = Table(
    "api_keys",
    METADATA,
    Column("key_id", String, primary_key=True),
    Column("digest", String, nullable=False, unique=True, index=True),
    Column("last4", String, nullable=False),
    Column("project", String, nullable=False),
    Column("user_name", String),
    Column("name", String),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)
"""The keys lanes issues: ``digest`` is the key's SHA-256 (hex), the key itself is never
stored; ``key_id`` is its public name, to list and revoke it by."""

VIEWS = ("v_daily_costs", "v_model_summary", "v_budget_status", "v_fallback_rates")
