"""Several worker processes (spawned) open one fresh ledger at the same moment, so they race
to migrate it, then each drains every event of the same set, shuffled into its own batches:
the batches overlap across processes all the time. The ledger must end with one row per
identity, every call settled once, and exactly the learned performance one writer would
have left, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import multiprocessing
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from lanes.kernel.config import Config
from lanes.stores.ledger import (
    FallbackRow,
    LedgerEvent,
    OutcomeEvent,
    RateLimitEvent,
    event_json,
    parse_event,
)
from lanes.stores.sql import open_ledger
from tests.stores.test_sql_ledger import (
    BACKENDS,
    GLM,
    SONNET,
    call,
    cost,
    decision,
    fresh_pg_database,
    outcome,
    row_counts,
    with_database,
)

PROCESSES = 4
JOBS = 48
BATCH = 20
HALF_LIFE_S = 600.0


def _job(n: int, now: float) -> list[LedgerEvent]:
    """Job ``n``: on claude2 or zai, ok or failed, some rate-limited and fallen back."""
    instance, model = ("zai", GLM) if n % 2 else ("claude2", SONNET)
    at = now - 30 * n  # spread over ~24 min, so decay and the order of arrival both matter
    job = f"job-{n:03d}"
    started = call(job, at, 0.5, instance=instance, model=model)
    fallbacks = []
    events: list[LedgerEvent] = [decision(job, at, instance, model), started]
    if n % 4 == 0:
        limited = started.model_dump(exclude={"kind", "reserved_usd"})
        events.append(RateLimitEvent(**limited, cooldown_s=10, reason="429"))
        fallbacks.append(FallbackRow(to_step=1, from_instance=instance, from_model=model,
                                     to_instance="koala", reason="rate limited"))  # fmt: skip
    status = "failed" if n % 3 == 0 else "ok"
    return [
        *events,
        cost(started, 0.01 * (n + 1)),
        outcome(job, at + 2, instance, model, status=status, latency_s=1.0 + n % 5,
                cost_usd=0.01 * (n + 1), fallbacks=fallbacks),
    ]  # fmt: skip


def _drain(
    config: Config, raws: list[str], seed: int, start: Barrier, done: Queue[tuple[int, int]]
) -> None:
    """One worker: once all are ready, open the ledger (migrating it, or finding it migrated),
    then write every event in its own shuffled batches; report (seed, rows written)."""
    rng = random.Random(seed)
    events = [parse_event(raw) for raw in raws]
    rng.shuffle(events)
    start.wait(timeout=60)
    ledger = open_ledger(config)
    written = 0
    for i in range(0, len(events), BATCH):
        written += ledger.write(events[i : i + BATCH])
        time.sleep(rng.uniform(0.02, 0.06))  # let the others in: a drainer's pace, not a loop's
    ledger.close()
    done.put((seed, written))


@pytest.fixture(params=BACKENDS)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database nobody has migrated yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    with fresh_pg_database() as url:
        yield url


def test_sql_processes_writing_overlapping_batches_record_each_event_once(
    fresh_url: str, tmp_path: Path, example_config: Config
) -> None:
    config = with_database(example_config, fresh_url, tmp_path, half_life_s=HALF_LIFE_S)
    now = time.time()
    events = [event for n in range(JOBS) for event in _job(n, now)]
    raws = [event_json(event) for event in events]
    ctx = multiprocessing.get_context("spawn")
    start, done = ctx.Barrier(PROCESSES), ctx.Queue()
    workers = [
        ctx.Process(target=_drain, args=(config, raws, seed, start, done))
        for seed in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    written = [n for _, n in sorted(done.get(timeout=120) for _ in workers)]
    for worker in workers:
        worker.join(timeout=30)
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES

    # A process that only ever got the lock after the others wrote everything writes nothing
    # (SQLite's lock is not fair); at least two must have raced for the same rows.
    assert sum(1 for n in written if n > 0) >= 2, f"no race: {written}; test too weak"
    # Every row is inserted by exactly one process; a call's settlement counts once more when
    # its call row was there first (not when its cost came first and inserted it settled).
    inserted = 3 * JOBS + 2 * (JOBS // 4)
    assert inserted <= sum(written) <= inserted + JOBS
    assert row_counts(config) == {
        "routing_decisions": JOBS, "routing_outcomes": JOBS, "cost_tracking": JOBS,
        "rate_limit_events": JOBS // 4, "fallback_events": JOBS // 4,
        "model_performance": 2, "budget_tracking": 0, "api_keys": 0,
    }  # fmt: skip
    ledger = open_ledger(config, migrate=False)
    since = datetime.fromtimestamp(now - 86400, UTC)
    assert ledger.unsettled_since(since).calls == 0
    assert ledger.spend_since(since) == pytest.approx(sum(0.01 * (n + 1) for n in range(JOBS)))
    read_at = time.time()  # performance() decays to its own now, taken as it starts
    learned = {(row.instance, row.model): row for row in ledger.performance()}
    ledger.close()
    outcomes = [event for event in events if isinstance(event, OutcomeEvent)]
    for lane in (("zai", GLM), ("claude2", SONNET)):
        mine = [o for o in outcomes if (o.instance, o.model) == lane]
        # Decayed to the read, or to the lane's latest outcome when that is later (job 0 ends
        # 2 s after the test's now): performance() never decays to a time before its data.
        to = max(read_at, *(o.at for o in mine))
        weight = {o.job_id: 0.5 ** ((to - o.at) / HALF_LIFE_S) for o in mine}
        # A fallback away from the lane is one more sample there, a failed one.
        left = sum(weight[o.job_id] for o in mine if o.fallbacks)
        assert learned[lane].samples == pytest.approx(sum(weight.values()) + left, rel=1e-4)
        ok = sum(weight[o.job_id] for o in mine if o.status == "ok")
        assert learned[lane].successes == pytest.approx(ok, rel=1e-4)
        latency = sum(weight[o.job_id] * o.latency_s for o in mine)
        assert learned[lane].latency_s == pytest.approx(
            latency / (sum(weight.values()) + left), rel=1e-6
        )
