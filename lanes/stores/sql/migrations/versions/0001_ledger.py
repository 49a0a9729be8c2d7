"""The ledger: decisions, calls and costs, outcomes, learned performance, budgets, views.

Revision ID: 0001
Revises:
Create Date: 2026-05-01

Frozen: this file describes the schema as it was at revision 0001, so it spells every
column out instead of importing :mod:`lanes.stores.sql.schema` (which follows the newest
revision). The views are plain SQL that runs on SQLite and PostgreSQL alike; only "today"
and "the first day of this month" differ, and both are UTC.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _col(name: str, type_: Any, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, type_, nullable=nullable)


def _who() -> list[sa.Column[Any]]:
    return [_col("project", sa.String, True), _col("user_name", sa.String, True)]


def _call_id() -> list[sa.Column[Any]]:
    return [
        _col("job_id", sa.String),
        *(_col(n, sa.Integer) for n in ("step", "attempt", "call")),
        *(_col(n, sa.String) for n in ("instance", "model", "task_type")),
        _col("at", _TS),
    ]


def _tables() -> None:
    op.create_table(
        "routing_decisions",
        sa.Column("id", _ID, primary_key=True),
        _col("job_id", sa.String),
        _col("at", _TS),
        *(_col(n, sa.String) for n in ("instance", "model", "strategy", "task_type")),
        _col("complexity", sa.String),
        _col("vital", sa.Boolean),
        _col("difficulty", sa.Float),
        _col("estimated_cost_usd", sa.Float),
        _col("reasons", sa.JSON),
        *_who(),
        _col("prompt", sa.Text, True),
        sa.UniqueConstraint("job_id", name="uq_routing_decisions_job"),
    )
    op.create_table(
        "routing_outcomes",
        sa.Column("id", _ID, primary_key=True),
        _col("job_id", sa.String),
        _col("at", _TS),
        *(_col(n, sa.String) for n in ("status", "instance", "model")),
        *(_col(n, sa.Integer) for n in ("step", "attempt")),
        _col("task_type", sa.String),
        *(_col(n, sa.Integer) for n in ("input_tokens", "output_tokens")),
        *(_col(n, sa.Float) for n in ("cost_usd", "latency_s", "waited_s")),
        _col("fallbacks", sa.Integer),
        _col("cached", sa.Boolean),
        _col("cost_saved_usd", sa.Float),
        _col("error", sa.Text, True),
        *_who(),
        _col("output", sa.Text, True),
        _col("rating", sa.Integer, True),
        _col("rated_at", _TS, True),
        sa.UniqueConstraint("job_id", name="uq_routing_outcomes_job"),
    )
    op.create_table(
        "cost_tracking",
        sa.Column("id", _ID, primary_key=True),
        *_call_id(),
        *_who(),
        _col("day", sa.Date),
        *(_col(n, sa.Float) for n in ("reserved_usd", "cost_usd")),
        _col("settled", sa.Boolean),
        *(_col(n, sa.Integer) for n in ("input_tokens", "output_tokens")),
        _col("ok", sa.Boolean, True),
        sa.UniqueConstraint("job_id", "step", "attempt", "call", name="uq_cost_tracking_call"),
    )
    _more_tables()


def _more_tables() -> None:
    op.create_table(
        "model_performance",
        *(sa.Column(n, sa.String, primary_key=True) for n in ("instance", "model", "task_type")),
        *(_col(n, sa.Float) for n in ("samples", "successes", "latency_sum", "cost_sum")),
        *(_col(n, sa.Float) for n in ("rating_sum", "ratings", "updated_at")),
    )
    op.create_table(
        "budget_tracking",
        sa.Column("budget_id", sa.String, primary_key=True),
        _col("scope", sa.String),
        _col("name", sa.String, True),
        _col("period", sa.String),
        *(_col(n, sa.Float) for n in ("limit_usd", "updated_at")),
    )
    op.create_table(
        "fallback_events",
        sa.Column("id", _ID, primary_key=True),
        _col("job_id", sa.String),
        _col("to_step", sa.Integer),
        _col("at", _TS),
        *(_col(n, sa.String) for n in ("from_instance", "from_model", "to_instance")),
        _col("reason", sa.Text),
        _col("task_type", sa.String),
        *_who(),
        sa.UniqueConstraint("job_id", "to_step", name="uq_fallback_events_step"),
    )
    op.create_table(
        "rate_limit_events",
        sa.Column("id", _ID, primary_key=True),
        *_call_id(),
        *_who(),
        _col("cooldown_s", sa.Float),
        _col("reason", sa.Text),
        sa.UniqueConstraint("job_id", "step", "attempt", "call", name="uq_rate_limit_events_call"),
    )
    for table in ("routing_decisions", "routing_outcomes", "cost_tracking", "fallback_events"):
        op.create_index(f"ix_{table}_at", table, ["at"])
    op.create_index("ix_rate_limit_events_at", "rate_limit_events", ["at"])
    op.create_index("ix_cost_tracking_day", "cost_tracking", ["day"])


def _utc_dates(dialect: str) -> tuple[str, str]:
    """SQL for (today, the first day of this month), UTC, as the ``day`` column stores dates."""
    if dialect == "postgresql":
        now = "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')"
        return f"CAST({now} AS DATE)", f"CAST(date_trunc('month', {now}) AS DATE)"
    return "date('now')", "date('now', 'start of month')"


V_DAILY_COSTS = """
CREATE VIEW v_daily_costs AS
SELECT day, instance, model, project, COUNT(*) AS calls, SUM(cost_usd) AS cost_usd
FROM cost_tracking
GROUP BY day, instance, model, project
"""

V_MODEL_SUMMARY = """
CREATE VIEW v_model_summary AS
SELECT instance, model, COUNT(*) AS jobs,
       SUM(CASE WHEN status = 'ok' THEN 1 ELSE 0 END) AS ok,
       CAST(SUM(CASE WHEN status = 'ok' THEN 1 ELSE 0 END) AS DOUBLE PRECISION) / COUNT(*)
           AS success_rate,
       AVG(latency_s) AS avg_latency_s,
       SUM(cost_usd) AS cost_usd
FROM routing_outcomes
WHERE NOT cached
GROUP BY instance, model
"""

# Spend per budget in UTC days and months. Budgets reset at midnight in budgets.timezone:
# the Redis counters the router enforces apply that zone; this view is a UTC overview.
V_BUDGET_STATUS = """
CREATE VIEW v_budget_status AS
SELECT budget_id, scope, name, period, limit_usd, today_usd, month_usd,
       CASE period WHEN 'daily' THEN today_usd WHEN 'monthly' THEN month_usd END AS spent_usd
FROM (
    SELECT b.budget_id, b.scope, b.name, b.period, b.limit_usd,
           COALESCE(SUM(CASE WHEN c.day = {today} THEN c.cost_usd END), 0) AS today_usd,
           COALESCE(SUM(c.cost_usd), 0) AS month_usd
    FROM budget_tracking b
    LEFT JOIN cost_tracking c ON c.day >= {month_start} AND (
           b.scope = 'global'
        OR (b.scope = 'instance' AND c.instance = b.name)
        OR (b.scope = 'project' AND c.project = b.name)
        OR (b.scope = 'user' AND c.user_name = b.name))
    GROUP BY b.budget_id, b.scope, b.name, b.period, b.limit_usd
) spend
"""

# A job "ran a step" on (instance, model) if it was decided there, fell back from there or
# ended there; the rate is fallbacks away over those jobs.
V_FALLBACK_RATES = """
CREATE VIEW v_fallback_rates AS
WITH ran AS (
    SELECT job_id, instance, model FROM routing_decisions
    UNION SELECT job_id, from_instance, from_model FROM fallback_events
    UNION SELECT job_id, instance, model FROM routing_outcomes WHERE NOT cached
), jobs AS (
    SELECT instance, model, COUNT(*) AS jobs FROM ran GROUP BY instance, model
)
SELECT f.from_instance, f.from_model, f.to_instance, COUNT(*) AS count,
       CAST(COUNT(*) AS DOUBLE PRECISION) / MAX(j.jobs) AS rate
FROM fallback_events f
JOIN jobs j ON j.instance = f.from_instance AND j.model = f.from_model
GROUP BY f.from_instance, f.from_model, f.to_instance
"""


def upgrade() -> None:
    _tables()
    today, month_start = _utc_dates(op.get_bind().dialect.name)
    op.execute(V_DAILY_COSTS)
    op.execute(V_MODEL_SUMMARY)
    op.execute(V_BUDGET_STATUS.format(today=today, month_start=month_start))
    op.execute(V_FALLBACK_RATES)


def downgrade() -> None:
    for view in ("v_fallback_rates", "v_budget_status", "v_model_summary", "v_daily_costs"):
        op.execute(f"DROP VIEW IF EXISTS {view}")
    for table in (
        "rate_limit_events",
        "fallback_events",
        "budget_tracking",
        "model_performance",
        "cost_tracking",
        "routing_outcomes",
        "routing_decisions",
    ):
        op.drop_table(table)
