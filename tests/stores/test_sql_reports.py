"""The ledger's reports and views on a small known dataset, on SQLite and PostgreSQL.

Today (UTC, a few seconds ago):

====  ==================================  ============================================
job   what happened                       calls (cost_tracking)
====  ==================================  ============================================
j1    zai/glm, ok in 1 s, rated 4         0.10
j2    zai/glm rate-limited, fell back to  zai/glm 0.05 (failed), claude2/sonnet 0.30
      claude2/sonnet, ok in 3 s
j3    claude2/sonnet (project beta, user  call 1 reserved 0.40, never settled; call 2
      bob, review, vital), failed in 5 s  0.20
j4    cache hit on zai/glm, saved 0.10    none
====  ==================================  ============================================

And 40 days ago (outside every report's period, inside the all-time views): j0, decided on
zai/glm, failed in 2 s, one call of 1.00.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from lanes.kernel.config import Config
from lanes.stores.ledger import BudgetLimitRow, FallbackRow, LedgerEvent, RateLimitEvent
from lanes.stores.sql import SqlLedger, database_url, open_ledger
from tests.stores.test_sql_ledger import (
    BACKENDS,
    GLM,
    SONNET,
    call,
    cost,
    decision,
    empty_pg_database,
    fresh_pg_database,
    outcome,
    with_database,
)

BETA = {"project": "beta", "user": "bob", "task_type": "review"}
SINCE = datetime.now(UTC) - timedelta(days=1)
VITALS = {("code", "claude2", False), ("code", "zai", False), ("review", "claude2", True)}
"""(task type, instance, vital) of the outcomes of the period, as ``task_outcomes`` gives."""


def _dataset(now: float) -> list[LedgerEvent]:
    old = now - 40 * 86400
    j0 = call("j0", old, 1.0)
    j1 = call("j1", now, 0.5)
    j2a, j2b = call("j2", now, 0.5), call("j2", now, 0.5, instance="claude2", model=SONNET, step=1)
    j3a = call("j3", now, 0.4, instance="claude2", model=SONNET, **BETA)
    j3b = call("j3", now, 0.4, instance="claude2", model=SONNET, attempt=1, **BETA)
    away = FallbackRow(to_step=1, from_instance="zai", from_model=GLM, to_instance="claude2",
                       reason="rate limited")  # fmt: skip
    limited = RateLimitEvent(**j2a.model_dump(exclude={"kind", "reserved_usd"}), cooldown_s=30,
                             reason="429 from zai")  # fmt: skip
    return [
        decision("j0", old), j0, cost(j0, 1.0),
        outcome("j0", old, status="failed", latency_s=2.0, cost_usd=1.0),
        decision("j1", now), j1, cost(j1, 0.10), outcome("j1", now, latency_s=1.0, cost_usd=0.1),
        decision("j2", now), j2a, cost(j2a, 0.05, ok=False), limited, j2b, cost(j2b, 0.30),
        outcome("j2", now, instance="claude2", model=SONNET, step=1, latency_s=3.0,
                cost_usd=0.35, fallbacks=[away]),
        decision("j3", now, instance="claude2", model=SONNET, vital=True, **BETA),
        j3a, j3b, cost(j3b, 0.20),
        outcome("j3", now, instance="claude2", model=SONNET, status="failed", latency_s=5.0,
                cost_usd=0.20, attempt=1, **BETA),
        outcome("j4", now, cached=True, latency_s=0.01, cost_usd=0.0, cost_saved_usd=0.10),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def config(request: pytest.FixtureRequest, tmp_path: Path, example_config: Config) -> Config:
    if request.param == "sqlite":
        return with_database(example_config, f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path)
    url: str = request.getfixturevalue("pg_url")
    empty_pg_database(url)
    return with_database(example_config, url, tmp_path)


@pytest.fixture
def now() -> float:
    """When the dataset's recent events happened: a few seconds ago, read when the test runs
    (not when the module was imported: a run that passes midnight would put them on the day
    before the one the budget view calls today), and never before today's midnight (UTC)."""
    at = time.time()
    return max(at - 5, at - at % 86400)


@pytest.fixture
def ledger(config: Config, now: float) -> Iterator[SqlLedger]:
    """A ledger holding the dataset (j1 rated 4)."""
    opened = open_ledger(config)
    opened.write(_dataset(now))
    opened.rate("j1", 4, time.time())
    yield opened
    opened.close()


def _view(config: Config, sql: str) -> list[dict[str, Any]]:
    engine = create_engine(database_url(config))
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(text(sql))]
    engine.dispose()
    return rows


def test_sql_costs_by_every_key(ledger: SqlLedger) -> None:
    def lines(by: str) -> list[tuple[str, int, float, float, float]]:
        return [(line.key, line.calls, round(line.cost_usd, 9), round(line.unsettled_usd, 9),
                 round(line.saved_usd, 9)) for line in ledger.costs(SINCE, by)]  # fmt: skip

    assert lines("model") == [(SONNET, 3, 0.9, 0.4, 0.0), (GLM, 2, 0.15, 0.0, 0.1)]
    assert lines("instance") == [("claude2", 3, 0.9, 0.4, 0.0), ("zai", 2, 0.15, 0.0, 0.1)]
    assert lines("project") == [("beta", 2, 0.6, 0.4, 0.0), ("acme", 3, 0.45, 0.0, 0.1)]
    assert lines("task-type") == [("review", 2, 0.6, 0.4, 0.0), ("code", 3, 0.45, 0.0, 0.1)]
    with pytest.raises(ValueError, match="task-type"):
        ledger.costs(SINCE, "day")


def test_sql_stats_per_lane(ledger: SqlLedger) -> None:
    stats = {(s.instance, s.model): s.model_dump(exclude={"instance", "model"})
             for s in ledger.stats(SINCE)}  # fmt: skip
    assert stats == {
        ("claude2", SONNET): {
            "decisions": 1, "outcomes": 2, "ok": 1, "success_rate": 0.5,
            "p50_latency_s": pytest.approx(4.0), "p95_latency_s": pytest.approx(4.9),
            "fallbacks": 0, "fallback_rate": 0.0, "rate_limits": 0,
            "cost_usd": pytest.approx(0.9),
        },
        ("zai", GLM): {
            "decisions": 2, "outcomes": 1, "ok": 1, "success_rate": 1.0,
            "p50_latency_s": 1.0, "p95_latency_s": 1.0,
            "fallbacks": 1, "fallback_rate": 0.5, "rate_limits": 1,
            "cost_usd": pytest.approx(0.15),
        },
    }  # fmt: skip


def test_sql_fallback_rates_and_task_outcomes(ledger: SqlLedger) -> None:
    [edge] = ledger.fallback_rates(SINCE)
    assert edge.model_dump() == {"from_instance": "zai", "from_model": GLM,
                                 "to_instance": "claude2", "count": 1, "rate": 0.5,
                                 "last_reason": "rate limited"}  # fmt: skip
    rows = [(r.task_type, r.instance, r.model, r.jobs, r.success_rate, r.rating,
             round(r.avg_cost_usd, 9)) for r in ledger.task_outcomes(SINCE)]  # fmt: skip
    assert rows == [
        ("code", "claude2", SONNET, 1, 1.0, None, 0.35),
        ("code", "zai", GLM, 1, 1.0, 4.0, 0.1),
        ("review", "claude2", SONNET, 1, 0.0, None, 0.2),
    ]
    assert ledger.fallback_rates(datetime.now(UTC) + timedelta(hours=1)) == []
    assert {(r.task_type, r.instance, r.vital) for r in ledger.task_outcomes(SINCE)} == VITALS


def test_sql_export_joins_each_outcome_with_its_decision(ledger: SqlLedger) -> None:
    rows = {row["job_id"]: row for row in ledger.export(SINCE)}
    assert sorted(rows) == ["j1", "j2", "j3", "j4"]  # j0 ended before the period
    j2 = rows["j2"]
    assert (j2["instance"], j2["decided_instance"], j2["fallbacks"]) == ("claude2", "zai", 1)
    assert (j2["status"], j2["strategy"], j2["reasons"]) == ("ok", "best_for_task",
                                                           ["cheapest good enough"])  # fmt: skip
    assert rows["j1"]["rating"] == 4 and rows["j3"]["user"] == "bob"
    assert datetime.fromisoformat(j2["ended_at"]).tzinfo is not None
    assert rows["j4"]["cached"] and rows["j4"]["decided_instance"] is None
    assert len({frozenset(row) for row in rows.values()}) == 1  # one set of columns (CSV)


def test_sql_views_on_the_whole_ledger(ledger: SqlLedger, config: Config, now: float) -> None:
    today = datetime.fromtimestamp(now, UTC).date()
    old_day = datetime.fromtimestamp(now - 40 * 86400, UTC).date()
    daily = {
        (_day(r["day"]), r["instance"], r["model"], r["project"]): (
            r["calls"],
            round(r["cost_usd"], 9),
        )
        for r in _view(config, "SELECT * FROM v_daily_costs")
    }
    assert daily == {
        (old_day, "zai", GLM, "acme"): (1, 1.0),
        (today, "zai", GLM, "acme"): (2, 0.15),
        (today, "claude2", SONNET, "acme"): (1, 0.3),
        (today, "claude2", SONNET, "beta"): (2, 0.6),
    }
    summary = {(r["instance"], r["model"]): (r["jobs"], r["ok"], r["success_rate"],
                                             r["avg_latency_s"], round(r["cost_usd"], 9))
               for r in _view(config, "SELECT * FROM v_model_summary")}  # fmt: skip
    assert summary == {
        ("zai", GLM): (2, 1, 0.5, 1.5, 1.1),
        ("claude2", SONNET): (2, 1, 0.5, 4.0, 0.55),
    }
    [edge] = _view(config, "SELECT * FROM v_fallback_rates")
    assert edge == {"from_instance": "zai", "from_model": GLM, "to_instance": "claude2",
                    "count": 1, "rate": pytest.approx(1 / 3)}  # fmt: skip


def test_sql_budget_status_view(ledger: SqlLedger, config: Config) -> None:
    for budget_id, scope, name, period in [
        ("global:daily", "global", None, "daily"),
        ("project:acme:monthly", "project", "acme", "monthly"),
        ("instance:claude2:daily", "instance", "claude2", "daily"),
        ("user:bob:daily", "user", "bob", "daily"),
        ("global:per_request", "global", None, "per_request"),
    ]:
        row = {"scope": scope, "name": name, "period": period, "limit_usd": 10, "updated_at": 1}
        ledger.set_budget_limit(BudgetLimitRow(budget_id=budget_id, **row))
    status = {r["budget_id"]: (round(r["today_usd"], 9), round(r["month_usd"], 9),
                               None if r["spent_usd"] is None else round(r["spent_usd"], 9))
              for r in _view(config, "SELECT * FROM v_budget_status")}  # fmt: skip
    assert status == {
        "global:daily": (1.05, 1.05, 1.05),  # j0's 1.00 is 40 days old: not this month
        "project:acme:monthly": (0.45, 0.45, 0.45),
        "instance:claude2:daily": (0.9, 0.9, 0.9),
        "user:bob:daily": (0.6, 0.6, 0.6),
        "global:per_request": (1.05, 1.05, None),
    }


def _day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def test_sql_discounts_sum_what_batches_and_the_prompt_cache_took_off(
    ledger: SqlLedger, now: float
) -> None:
    assert ledger.discounts(SINCE).batched_jobs == 0
    ledger.write([
        outcome("b1", now, instance="claude2", model=SONNET, batched=True, batch_saved_usd=0.2,
                prompt_cache_saved_usd=0.05),
        outcome("b2", now, instance="claude2", model=SONNET, prompt_cache_saved_usd=-0.01),
        outcome("b0", now - 40 * 86400, batched=True, batch_saved_usd=9.0),  # out of period
    ])  # fmt: skip
    found = ledger.discounts(SINCE)
    assert found.batched_jobs == 1
    assert found.batch_saved_usd == pytest.approx(0.2)
    assert found.prompt_cache_saved_usd == pytest.approx(0.04)
