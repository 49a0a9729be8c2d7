"""The SQL ledger's contract, run against SQLite (a file under tmp_path) and PostgreSQL.

PostgreSQL is the server at 127.0.0.1:5432 (user ``postgres``, trust auth): each test module
gets a database of its own, emptied before every test, dropped at the end. Without a server
the PostgreSQL cases are skipped, saying why, unless ``$CI`` is set: then they fail.

The helpers here (events, databases) are shared with the other ``test_sql_*`` modules.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, func, inspect, select

from lanes.kernel.config import Config
from lanes.kernel.errors import InfrastructureError, JobError
from lanes.stores.ledger import (
    BudgetLimitRow,
    CallEvent,
    CostEvent,
    DecisionEvent,
    FallbackRow,
    LedgerEvent,
    OutcomeEvent,
    RateLimitEvent,
)
from lanes.stores.sql import SqlLedger, database_url, open_ledger
from lanes.stores.sql.migrations import VERSION_TABLE, current, head
from lanes.stores.sql.schema import METADATA, VIEWS, model_performance
from tests.pg import empty_pg_database, fresh_pg_database, pg_admin

BACKENDS = ("sqlite", "postgresql")
TABLES = {table.name for table in METADATA.sorted_tables}
SONNET = "claude-sonnet-4-5"
GLM = "glm-4.6"


# -- databases -------------------------------------------------------------------------------
def with_database(config: Config, url: str, tmp_path: Path, **learning: float) -> Config:
    """``config`` on the ledger at ``url``, with ``learning`` overrides."""
    spec = config.learning.model_copy(update=learning)
    state_dir = str(tmp_path / "state")
    return config.model_copy(update={"database_url": url, "state_dir": state_dir, "learning": spec})


def row_counts(config: Config) -> dict[str, int]:
    """Rows in every ledger table, read with an engine of the test's own."""
    engine = create_engine(database_url(config))
    with engine.connect() as conn:
        counts = {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in METADATA.sorted_tables
        }
    engine.dispose()
    return counts


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, unmigrated database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("pg_url")
    empty_pg_database(url)
    return url


@pytest.fixture
def config(db_url: str, tmp_path: Path, example_config: Config) -> Config:
    return with_database(example_config, db_url, tmp_path, half_life_s=3600.0)


@pytest.fixture
def ledger(config: Config) -> Iterator[SqlLedger]:
    opened = open_ledger(config)
    yield opened
    opened.close()


# -- events ----------------------------------------------------------------------------------
def decision(
    job_id: str, at: float, instance: str = "zai", model: str = GLM, **kw: Any
) -> DecisionEvent:
    fields: dict[str, Any] = {
        "strategy": "best_for_task", "task_type": "code", "complexity": "simple", "vital": False,
        "difficulty": 0.3, "estimated_cost_usd": 0.01, "reasons": ["cheapest good enough"],
        "project": "acme", "user": "ann",
    }  # fmt: skip
    return DecisionEvent(job_id=job_id, at=at, instance=instance, model=model, **{**fields, **kw})


def call(job_id: str, at: float, reserved_usd: float, instance: str = "zai", model: str = GLM,
         **kw: Any) -> CallEvent:  # fmt: skip
    fields: dict[str, Any] = {"step": 0, "attempt": 0, "call": 1, "task_type": "code",
                              "project": "acme", "user": "ann"}  # fmt: skip
    return CallEvent(job_id=job_id, at=at, instance=instance, model=model,
                     reserved_usd=reserved_usd, **{**fields, **kw})  # fmt: skip


def cost(settles: CallEvent, cost_usd: float, **kw: Any) -> CostEvent:
    """The cost that settles ``settles`` (same identity), a second later."""
    fields = settles.model_dump(exclude={"kind", "reserved_usd", "at"})
    return CostEvent(**{**fields, "at": settles.at + 1, "cost_usd": cost_usd,
                        "input_tokens": 100, "output_tokens": 50, **kw})  # fmt: skip


def outcome(
    job_id: str, at: float, instance: str = "zai", model: str = GLM, **kw: Any
) -> OutcomeEvent:
    fields: dict[str, Any] = {
        "status": "ok", "step": 0, "attempt": 0, "task_type": "code", "latency_s": 1.0,
        "cost_usd": 0.1, "project": "acme", "user": "ann",
    }  # fmt: skip
    return OutcomeEvent(job_id=job_id, at=at, instance=instance, model=model, **{**fields, **kw})


def job_events(job_id: str, at: float, cost_usd: float = 0.1, **kw: Any) -> list[LedgerEvent]:
    """Decision, call, cost and outcome of one job that ran on zai."""
    started = call(job_id, at, reserved_usd=0.5)
    return [decision(job_id, at), started, cost(started, cost_usd),
            outcome(job_id, at + 2, cost_usd=cost_usd, **kw)]  # fmt: skip


def a_batch(at: float) -> list[LedgerEvent]:
    """Three jobs: one ok, one that fell back after a rate limit, one cache hit."""
    first = call("j2", at, 0.3)
    second = call("j2", at + 1, 0.6, instance="claude2", model=SONNET, step=1)
    fell_back = FallbackRow(to_step=1, from_instance="zai", from_model=GLM,
                            to_instance="claude2", reason="rate limited")  # fmt: skip
    return [
        *job_events("j1", at),
        decision("j2", at),
        first,
        RateLimitEvent(
            **first.model_dump(exclude={"kind", "reserved_usd"}), cooldown_s=30, reason="429"
        ),
        cost(first, 0.0, ok=False),
        second,
        cost(second, 0.4),
        outcome("j2", at + 3, instance="claude2", model=SONNET, step=1, fallbacks=[fell_back]),
        outcome("j3", at, cached=True, cost_usd=0.0, cost_saved_usd=0.1),
    ]


# -- opening and migrating -------------------------------------------------------------------
def test_sql_migrations_create_every_table_and_view(config: Config) -> None:
    ledger = open_ledger(config)
    ledger.close()
    engine = create_engine(database_url(config))
    with engine.connect() as conn:
        assert current(conn) == (head(),)
        found = inspect(conn)
        assert set(found.get_table_names()) >= TABLES
        assert set(VIEWS) == set(found.get_view_names())
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, METADATA) == []  # migrations and schema.py agree
        for view in VIEWS:
            conn.exec_driver_sql(f"SELECT * FROM {view}").all()
    engine.dispose()
    open_ledger(config).close()  # a second open finds the schema in place
    assert row_counts(config) == dict.fromkeys(TABLES, 0)


def test_sql_open_without_migrating_refuses_an_empty_database(config: Config) -> None:
    with pytest.raises(InfrastructureError, match=f"not {head()}"):
        open_ledger(config, migrate=False)
    open_ledger(config).close()
    open_ledger(config, migrate=False).close()


def test_sql_sqlite_runs_in_wal_mode_and_waits_for_the_write_lock(
    example_config: Config, tmp_path: Path
) -> None:
    config = with_database(example_config, f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path)
    ledger = open_ledger(config)
    blocker = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock for a while
    threading.Timer(0.5, blocker.rollback).start()
    started = time.monotonic()
    assert ledger.write([call("j1", time.time(), 0.1)]) == 1  # waited, did not fail
    assert time.monotonic() - started >= 0.4
    assert blocker.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    blocker.close()
    ledger.close()


def test_sql_database_url_defaults_to_sqlite_in_the_state_dir(
    example_config: Config, tmp_path: Path
) -> None:
    config = example_config.model_copy(update={"state_dir": str(tmp_path / "deep" / "state")})
    assert database_url(config) == f"sqlite:///{tmp_path / 'deep' / 'state' / 'ledger.db'}"
    assert (tmp_path / "deep" / "state").is_dir()
    for given in ("postgresql://u@h:5432/db", "postgres://u@h:5432/db"):
        with_pg = example_config.model_copy(update={"database_url": given})
        assert database_url(with_pg) == "postgresql+psycopg://u@h:5432/db"


def test_sql_an_unreachable_postgresql_is_an_infrastructure_error_at_once(
    example_config: Config,
) -> None:
    config = example_config.model_copy(
        update={"database_url": "postgresql://postgres:s3cret@127.0.0.1:1/x"}
    )
    started = time.monotonic()
    with pytest.raises(InfrastructureError) as caught:
        open_ledger(config)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert "127.0.0.1:1/x" in message and "s3cret" not in message
    assert "is PostgreSQL running" in message and "LANES_DATABASE_URL" in message
    assert caught.value.exit_code == 5


def test_sql_an_unusable_sqlite_path_is_an_infrastructure_error(
    example_config: Config, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    config = example_config.model_copy(update={"state_dir": str(tmp_path / "a-file")})
    with pytest.raises(InfrastructureError, match="LANES_DATABASE_URL"):
        open_ledger(config)
    (tmp_path / "junk.db").write_text("this is not a database" * 100)
    junk = example_config.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'junk.db'}"})
    with pytest.raises(InfrastructureError, match=r"junk\.db"):
        open_ledger(junk)


# -- writing ---------------------------------------------------------------------------------
def _snapshot(ledger: SqlLedger, config: Config) -> dict[str, Any]:
    since = datetime.now(UTC) - timedelta(days=1)
    engine = create_engine(database_url(config))
    with engine.connect() as conn:
        performance = conn.execute(select(model_performance).order_by("instance")).all()
    engine.dispose()
    return {
        "rows": row_counts(config),
        "spend": round(ledger.spend_since(since), 9),
        "performance": performance,
        "export": ledger.export(since),
        "costs": ledger.costs(since, "model"),
    }


def test_sql_replaying_a_batch_changes_nothing(ledger: SqlLedger, config: Config) -> None:
    batch = a_batch(time.time() - 60)
    written = ledger.write(batch)
    # j1: decision, a settled call, outcome; j2: decision, 2 settled calls, rate limit,
    # outcome, fallback; j3: outcome (a call and its cost in one batch make one row)
    assert written == 3 + 6 + 1
    first = _snapshot(ledger, config)
    assert first["rows"]["cost_tracking"] == 3 and first["rows"]["fallback_events"] == 1
    assert first["spend"] == pytest.approx(0.5)
    assert len(first["performance"]) == 2  # j3 was a cache hit: it teaches nothing
    assert ledger.write(batch) == 0
    assert ledger.write(list(reversed(batch[3:]))) == 0
    assert _snapshot(ledger, config) == first


def test_sql_an_unsettled_call_counts_at_its_reservation_until_it_settles(
    ledger: SqlLedger,
) -> None:
    since = datetime.now(UTC) - timedelta(hours=1)
    started = call("j1", time.time(), reserved_usd=0.5)
    assert ledger.write([started]) == 1
    assert ledger.spend_since(since) == pytest.approx(0.5)
    assert ledger.unsettled_since(since).model_dump() == {"calls": 1, "reserved_usd": 0.5}
    assert ledger.write([cost(started, 0.2)]) == 1
    assert ledger.spend_since(since) == pytest.approx(0.2)
    assert ledger.write([started]) == 0  # a replayed call does not un-settle it
    assert ledger.write([cost(started, 0.2)]) == 0
    assert ledger.spend_since(since) == pytest.approx(0.2)
    assert ledger.unsettled_since(since).calls == 0
    [line] = ledger.costs(since, "model")
    assert (line.calls, line.unsettled_usd) == (1, 0.0)


def test_sql_a_cost_without_its_call_is_recorded_settled(ledger: SqlLedger) -> None:
    since = datetime.now(UTC) - timedelta(hours=1)
    started = call("j1", time.time(), reserved_usd=0.5)
    assert ledger.write([cost(started, 0.2), started]) == 1  # one settled row
    assert ledger.write([cost(call("j2", time.time(), 0.5), 0.3)]) == 1
    assert ledger.write([call("j2", time.time(), 0.5)]) == 0
    assert ledger.spend_since(since) == pytest.approx(0.5)
    assert ledger.unsettled_since(since).calls == 0


def test_sql_spend_since_filters_by_instance_project_and_user(ledger: SqlLedger) -> None:
    now = time.time()
    ledger.write([
        call("j1", now, 0.1),
        call("j2", now, 0.2, instance="claude2", model=SONNET, project="beta", user="bob"),
        call("j3", now - 3 * 86400, 5.0),
    ])  # fmt: skip
    since = datetime.now(UTC) - timedelta(days=1)
    assert ledger.spend_since(since) == pytest.approx(0.3)
    assert ledger.spend_since(since, instance="claude2") == pytest.approx(0.2)
    assert ledger.spend_since(since, project="acme") == pytest.approx(0.1)
    assert ledger.spend_since(since, user="bob", project=None) == pytest.approx(0.2)
    assert ledger.spend_since(since - timedelta(days=3)) == pytest.approx(5.3)
    naive = since.replace(tzinfo=None)  # naive means UTC
    assert ledger.spend_since(naive) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="model"):
        ledger.spend_since(since, model=GLM)


# -- learning and rating ---------------------------------------------------------------------
def test_sql_outcomes_teach_performance_with_decay(ledger: SqlLedger) -> None:
    now = time.time()
    ledger.write([
        outcome("old", now - 3600, latency_s=2.0, cost_usd=0.2),  # one half-life ago
        outcome("new", now, status="failed", latency_s=4.0, cost_usd=0.4),
        outcome("hit", now, cached=True, latency_s=0.01, cost_usd=0.0),
        outcome("other", now, instance="claude2", model=SONNET, task_type="review"),
    ])  # fmt: skip
    rows = {(r.instance, r.model, r.task_type): r for r in ledger.performance()}
    assert set(rows) == {("zai", GLM, "code"), ("claude2", SONNET, "review")}
    zai = rows[("zai", GLM, "code")]
    assert zai.samples == pytest.approx(1.5, rel=1e-3)
    assert zai.successes == pytest.approx(0.5, rel=1e-3)
    assert zai.latency_s == pytest.approx((2.0 * 0.5 + 4.0) / 1.5, rel=1e-3)
    assert zai.cost_usd == pytest.approx((0.2 * 0.5 + 0.4) / 1.5, rel=1e-3)
    assert (zai.ratings, zai.rating) == (0.0, None)


def test_sql_rating_an_unknown_job_is_a_job_error(ledger: SqlLedger) -> None:
    with pytest.raises(JobError, match=r"'nope'.*lanes export"):
        ledger.rate("nope", 4, time.time())


def test_sql_rating_again_replaces_the_rating(ledger: SqlLedger) -> None:
    now = time.time()
    ledger.write([outcome("j1", now - 10), outcome("j2", now - 10)])
    ledger.rate("j1", 5, now - 5)
    ledger.rate("j1", 1, now)
    [row] = ledger.performance()
    assert row.ratings == pytest.approx(1.0, rel=1e-3)
    assert row.rating == pytest.approx(1.0, rel=1e-3)
    ledger.rate("j2", 4, now)
    [row] = ledger.performance()
    assert (row.ratings, row.rating) == (pytest.approx(2.0, rel=1e-3), pytest.approx(2.5))
    rated = {r["job_id"]: r["rating"] for r in ledger.export(datetime.now(UTC) - timedelta(1))}
    assert rated == {"j1": 1, "j2": 4}


# -- budgets and resets ----------------------------------------------------------------------
def test_sql_budget_limits_are_set_and_replaced(ledger: SqlLedger) -> None:
    daily = BudgetLimitRow(budget_id="global:daily", scope="global", name=None, period="daily",
                           limit_usd=10.0, updated_at=1.0)  # fmt: skip
    acme = BudgetLimitRow(budget_id="project:acme:monthly", scope="project", name="acme",
                          period="monthly", limit_usd=50.0, updated_at=2.0)  # fmt: skip
    ledger.set_budget_limit(daily)
    ledger.set_budget_limit(acme)
    ledger.set_budget_limit(daily.model_copy(update={"limit_usd": 12.5, "updated_at": 3.0}))
    assert ledger.budget_limits() == [
        daily.model_copy(update={"limit_usd": 12.5, "updated_at": 3.0}),
        acme,
    ]


def test_sql_reset_stats_forgets_everything_but_costs_and_budgets(
    ledger: SqlLedger, config: Config
) -> None:
    ledger.write(a_batch(time.time() - 60))
    ledger.set_budget_limit(BudgetLimitRow(budget_id="global:daily", scope="global", name=None,
                                           period="daily", limit_usd=1, updated_at=1))  # fmt: skip
    since = datetime.now(UTC) - timedelta(days=1)
    spent = ledger.spend_since(since)
    ledger.reset_stats()
    counts = row_counts(config)
    assert counts["cost_tracking"] == 3 and counts["budget_tracking"] == 1
    assert {name for name, n in counts.items() if n} == {"cost_tracking", "budget_tracking"}
    assert ledger.spend_since(since) == pytest.approx(spent)
    assert ledger.performance() == [] and ledger.export(since) == []
    with pytest.raises(JobError):
        ledger.rate("j1", 3, time.time())


def test_sql_a_missing_postgresql_skips_the_cases_but_fails_them_under_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("tests.pg.PG_SERVER", "postgresql://postgres@127.0.0.1:1")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"\$CI is set"):
        pg_admin()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL not reachable"):
        pg_admin()
