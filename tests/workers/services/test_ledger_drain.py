"""The hand-off queue (real Redis) drained into the ledger (real SQLite and PostgreSQL):
nothing lost while the database is away, nothing written twice when a drain is repeated."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from lanes.kernel.config import Config
from lanes.kernel.errors import ConfigError, InfrastructureError
from lanes.layers.budgets.worker import restore_overrides
from lanes.stores.keys import Keys
from lanes.stores.ledger import (
    BudgetLimitRow,
    CallEvent,
    CostEvent,
    LedgerEvent,
    OutcomeEvent,
    parse_event,
)
from lanes.stores.redis.budget import RedisBudgetStore
from lanes.stores.redis.ledger import RedisLedgerSink
from lanes.stores.sql import SqlLedger, open_ledger
from lanes.workers.services.ledger_drain import (
    LedgerDrainer,
    drain,
    drain_all,
    drain_every,
    start_drainer_process,
)
from tests.pg import PG_SERVER, pg_admin

EPOCH = datetime.fromtimestamp(0, UTC)


def job_events(job_id: str, cost_usd: float = 0.01) -> list[LedgerEvent]:
    ids = {"job_id": job_id, "instance": "zai", "model": "glm-4.6", "step": 0, "attempt": 0,
           "call": 1, "task_type": "analysis"}  # fmt: skip
    return [
        CallEvent(**ids, reserved_usd=0.05),
        CostEvent(**ids, cost_usd=cost_usd, input_tokens=10, output_tokens=5),
        OutcomeEvent(
            job_id=job_id,
            status="ok",
            instance="zai",
            model="glm-4.6",
            step=0,
            attempt=0,
            task_type="analysis",
            cost_usd=cost_usd,
        ),
    ]


@pytest.fixture
def sink(redis_client: redis.Redis, keys: Keys) -> RedisLedgerSink:
    return RedisLedgerSink(redis_client, keys)


def sqlite_config(config: Config, tmp_path: Path) -> Config:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    return config.model_copy(update={"database_url": url, "state_dir": str(tmp_path)})


@pytest.fixture
def ledger(example_config: Config, tmp_path: Path) -> Iterator[SqlLedger]:
    opened = open_ledger(sqlite_config(example_config, tmp_path))
    yield opened
    opened.close()


def test_drain_moves_every_event_once_and_empties_the_queue(
    sink: RedisLedgerSink, ledger: SqlLedger
) -> None:
    for i in range(30):
        sink.emit(job_events(f"job-{i}"))
    assert sink.backlog() == 90
    assert drain(sink, ledger, batch=7) == 90
    assert sink.backlog() == 0
    assert ledger.spend_since(EPOCH) == pytest.approx(30 * 0.01)
    assert sum(row.outcomes for row in ledger.stats(EPOCH)) == 30


def test_a_drain_repeated_after_a_crash_writes_nothing_twice(
    sink: RedisLedgerSink, ledger: SqlLedger
) -> None:
    """A drainer that died after its commit and before trimming: the next one writes the same
    events again, and the ledger applies them once."""
    sink.emit(job_events("job-a", cost_usd=0.02))
    ledger.write([*map(_parsed, sink.oldest(10))])  # the commit that was never trimmed
    assert drain(sink, ledger) == 3
    assert ledger.spend_since(EPOCH) == pytest.approx(0.02)
    assert sum(row.outcomes for row in ledger.stats(EPOCH)) == 1


def _parsed(raw: str) -> LedgerEvent:
    return parse_event(raw)


def test_an_unreadable_event_is_skipped_not_blocking(
    sink: RedisLedgerSink, ledger: SqlLedger, redis_client: redis.Redis, keys: Keys
) -> None:
    redis_client.rpush(keys.ledger_events(), "{not json")
    sink.emit(job_events("job-b"))
    assert drain(sink, ledger) == 4
    assert sink.backlog() == 0
    assert ledger.spend_since(EPOCH) == pytest.approx(0.01)


def test_only_one_process_drains_at_a_time(sink: RedisLedgerSink, ledger: SqlLedger) -> None:
    sink.emit(job_events("job-c"))
    token = sink.lock(30)
    assert token is not None
    try:
        assert drain(sink, ledger) == 0  # someone else holds the lock
        assert sink.backlog() == 3
    finally:
        sink.unlock(token)
    assert drain(sink, ledger) == 3


def test_nothing_is_lost_while_the_database_is_away(
    sink: RedisLedgerSink, example_config: Config, tmp_path: Path
) -> None:
    """A PostgreSQL database that is not there yet: the drainer's rounds fail, the events stay
    in Redis; once it is there, the next round moves every one of them."""
    name = f"lanes_away_{tmp_path.name[-8:].lower()}".replace("-", "_")
    config = example_config.model_copy(update={"database_url": f"{PG_SERVER}/{name}"})
    pg_admin().close()  # skips (fails under $CI) without a PostgreSQL
    drainer = LedgerDrainer(config, sink)
    for i in range(5):
        sink.emit(job_events(f"away-{i}"))
    with pytest.raises(InfrastructureError, match=name):
        drainer.drain()
    assert sink.backlog() == 15
    with pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        assert drainer.drain() == 15
        assert sink.backlog() == 0
        ledger = open_ledger(config)
        assert ledger.spend_since(EPOCH) == pytest.approx(0.05)
        ledger.close()
    finally:
        drainer.close()
        with pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_drain_loop_keeps_going_after_a_failed_round(
    sink: RedisLedgerSink, ledger: SqlLedger
) -> None:
    calls: list[int] = []
    stop = threading.Event()

    def once() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise InfrastructureError("database away")
        moved = drain_all(sink, ledger, timeout_s=1)
        if sink.backlog() == 0:
            stop.set()
        return moved

    sink.emit(job_events("job-d"))
    loop = threading.Thread(target=drain_every, args=(once, 0.05, stop))
    loop.start()
    loop.join(timeout=10)
    assert not loop.is_alive() and len(calls) >= 2 and sink.backlog() == 0
    assert ledger.spend_since(EPOCH) == pytest.approx(0.01)


def test_the_drainer_process_drains_and_drains_again_when_stopped(
    example_config: Config, tmp_path: Path, redis_url: str, keys: Keys,
    redis_client: redis.Redis,
) -> None:  # fmt: skip
    """A real spawned drainer: it moves what is queued while it runs, and what is queued
    when it is told to stop."""
    config = sqlite_config(example_config, tmp_path).model_copy(
        update={"redis_prefix": keys.prefix,
                "ledger": example_config.ledger.model_copy(update={"flush_interval_s": 0.2})}
    )  # fmt: skip
    sink = RedisLedgerSink(redis_client, keys)
    sink.emit(job_events("early"))
    process = start_drainer_process(config, redis_url)
    try:
        deadline = time.monotonic() + 30
        while sink.backlog() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sink.backlog() == 0
        sink.emit(job_events("late"))
    finally:
        process.close()
    assert not process.process.is_alive() and process.process.exitcode == 0
    assert sink.backlog() == 0
    ledger = open_ledger(config)
    assert ledger.spend_since(EPOCH) == pytest.approx(0.02)
    ledger.close()


# -- budget limits a drainer restores after a Redis restart ------------------------------------


def _limit_row(budget_id: str, limit_usd: float) -> BudgetLimitRow:
    scope, *name, period = budget_id.split(":")
    return BudgetLimitRow(budget_id=budget_id, scope=scope, name=":".join(name) or None,
                          period=period, limit_usd=limit_usd, updated_at=1.0)  # fmt: skip


def test_restoring_limits_skips_a_row_no_counter_can_hold(
    ledger: SqlLedger, redis_client: redis.Redis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    """A ledger row of ``1e308`` (saved before Redis refused it): the limits around it are
    restored, the bad one is logged (once) and skipped."""
    ledger.set_budget_limit(_limit_row("global:daily", 1e308))
    ledger.set_budget_limit(_limit_row("project:acme:daily", 2.5))
    ledger.set_budget_limit(_limit_row("user:bob:monthly", 9.3e9))
    store = RedisBudgetStore(redis_client, keys)
    reported: set[str] = set()
    with caplog.at_level(logging.ERROR, logger="lanes.budget"):
        assert restore_overrides(store, ledger, reported) == 1
        assert restore_overrides(store, ledger, reported) == 0  # held now; the bad ones again
    assert store.limits() == {"project:acme:daily": 2.5}
    assert reported == {"global:daily", "user:bob:monthly"}
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2
    assert "lanes budget --set-daily N --scope global" in skipped[0]


def test_a_bad_budget_row_does_not_stop_the_drainer_process(
    example_config: Config, tmp_path: Path, redis_url: str, keys: Keys,
    redis_client: redis.Redis,
) -> None:  # fmt: skip
    """After a Redis restart the drainer restores budget limits from the ledger: a row it
    cannot restore is skipped, and the drainer goes on moving events and restoring the rest."""
    config = sqlite_config(example_config, tmp_path).model_copy(
        update={"redis_prefix": keys.prefix,
                "ledger": example_config.ledger.model_copy(update={"flush_interval_s": 0.2})}
    )  # fmt: skip
    ledger = open_ledger(config)
    ledger.set_budget_limit(_limit_row("global:daily", 1e308))
    ledger.set_budget_limit(_limit_row("project:acme:daily", 2.5))
    ledger.close()
    sink = RedisLedgerSink(redis_client, keys)
    process = start_drainer_process(config, redis_url)
    try:
        for i in range(3):
            sink.emit(job_events(f"after-restart-{i}"))
            deadline = time.monotonic() + 30
            while sink.backlog() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sink.backlog() == 0 and process.process.is_alive()
        store = RedisBudgetStore(redis_client, keys)
        assert store.limits() == {"project:acme:daily": 2.5}
    finally:
        process.close()
    assert process.process.exitcode == 0


def test_the_drain_loop_reports_each_round_and_survives_a_bad_database_url(
    sink: RedisLedgerSink,
) -> None:
    heard: list[str | None] = []
    stop = threading.Event()
    rounds = iter([ConfigError("not a database URL", key="database_url"), None, None])

    def once() -> int:
        failure = next(rounds)
        if failure is not None:
            raise failure
        return 0

    def report(error: str | None) -> None:
        heard.append(error)
        if len(heard) == 3:
            stop.set()

    loop = threading.Thread(target=drain_every, args=(once, 0.01, stop, None, report))
    loop.start()
    loop.join(timeout=10)
    assert not loop.is_alive()
    assert heard[0] is not None and "not a database URL" in heard[0]
    assert heard[1:] == [None, None]
