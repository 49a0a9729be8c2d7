"""The ledger's drainers are watched: each beats in Redis, a worker replaces one that died
(at a bounded rate), and ``lanes doctor``, ``lanes status`` and the metrics say when none
runs while events wait, when a round fails, and when a drainer was replaced."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client import generate_latest

from lanes.cli.status import ledger_line
from lanes.deployment import open_deployment
from lanes.kernel.config import Config
from lanes.ops.doctor import drainer_check
from lanes.ops.exporter import registry
from lanes.ops.status import ledger_status
from lanes.stores.keys import Keys
from lanes.stores.redis.ledger import RedisLedgerSink
from lanes.workers.services import ledger_health as health
from lanes.workers.services.ledger_drain import DrainerProcess
from lanes.workers.services.ledger_supervisor import (
    MAX_RESTARTS,
    RESTART_WINDOW_S,
    DrainerSupervisor,
)
from tests.workers.services.test_ledger_drain import job_events, sqlite_config

STALE_S = 30.0


def test_no_drainer_while_events_wait_fails_and_a_beat_makes_it_ok(
    redis_client: redis.Redis, keys: Keys
) -> None:
    assert health.ledger_health(redis_client, keys, STALE_S).verdict()[0] == "warn"
    RedisLedgerSink(redis_client, keys).emit(job_events("waiting"))
    found = health.ledger_health(redis_client, keys, STALE_S)
    status, detail, fix = found.verdict()
    assert (status, found.backlog, found.drainers) == ("fail", 3, [])
    assert "3 ledger event(s) waiting" in detail and "no drainer running" in detail
    assert "start a worker" in fix
    health.beat(redis_client, keys, "host-a:11", STALE_S, None)
    found = health.ledger_health(redis_client, keys, STALE_S)
    assert found.drainers == ["host-a:11"]
    assert found.verdict()[0] == "ok"


def test_a_silent_drainer_no_longer_counts(redis_client: redis.Redis, keys: Keys) -> None:
    health.beat(redis_client, keys, "host-a:11", STALE_S, None)
    seconds, _ = redis_client.time()
    redis_client.zadd(keys.ledger_drainers(), {"host-b:22": seconds - STALE_S - 5})
    assert health.ledger_health(redis_client, keys, STALE_S).drainers == ["host-a:11"]
    health.leave(redis_client, keys, "host-a:11")
    assert health.ledger_health(redis_client, keys, STALE_S).drainers == []


def test_a_failed_round_warns_until_a_good_one(redis_client: redis.Redis, keys: Keys) -> None:
    health.beat(redis_client, keys, "host-a:11", STALE_S, "ledger database x is unusable")
    status, detail, _ = health.ledger_health(redis_client, keys, STALE_S).verdict()
    assert status == "warn" and "the last round failed" in detail and "unusable" in detail
    health.beat(redis_client, keys, "host-b:22", STALE_S, None)
    assert health.ledger_health(redis_client, keys, STALE_S).verdict()[0] == "ok"


def test_a_replaced_drainer_is_reported_with_its_exit_code(
    redis_client: redis.Redis, keys: Keys
) -> None:
    health.beat(redis_client, keys, "host-a:12", STALE_S, None)
    assert health.record_restart(redis_client, keys, "host-a:11", -9) == 1
    found = health.ledger_health(redis_client, keys, STALE_S)
    status, detail, _ = found.verdict()
    assert (status, found.restarts) == ("warn", 1)
    assert "drainer host-a:11 died (exit code -9)" in detail and "1 replaced so far" in detail


def test_doctor_status_and_metrics_report_a_backlog_without_drainer(
    example_config: Config, redis_url: str, redis_client: redis.Redis, keys: Keys
) -> None:
    config = example_config.model_copy(update={"redis_prefix": keys.prefix})
    RedisLedgerSink(redis_client, keys).emit(job_events("stuck"))
    health.record_restart(redis_client, keys, "host-a:11", 1)
    deployment = open_deployment(config, redis_url)
    check = drainer_check(deployment)
    assert (check.name, check.status) == ("ledger drainer", "fail")
    assert "3 ledger event(s) waiting in Redis and no drainer running" in check.detail
    shown = ledger_status(deployment)
    assert shown is not None
    assert (shown["status"], shown["backlog"], shown["drainers"], shown["restarts"]) == (
        "fail", 3, [], 1
    )  # fmt: skip
    assert "no drainer running" in ledger_line(shown).plain
    scraped = generate_latest(registry(config, redis_url, None)).decode()
    assert "lanes_ledger_backlog 3.0" in scraped
    assert "lanes_ledger_drainers 0.0" in scraped
    assert "lanes_ledger_drainer_restarts_total 1.0" in scraped
    off = config.model_copy(update={"ledger": config.ledger.model_copy(update={"enabled": False})})
    with open_deployment(off, redis_url) as ledger_off:
        assert drainer_check(ledger_off).status == "ok"
        assert ledger_status(ledger_off) is None
    deployment.close()


# -- a worker's supervisor -------------------------------------------------------------------


@dataclass
class _Dead:
    """A drainer process that already exited."""

    pid: int
    exitcode: int = 1

    def is_alive(self) -> bool:
        return False


class _Stop:
    def wait(self, timeout: float | None = None) -> bool:
        return True

    def set(self) -> None:
        pass


def test_a_drainer_that_keeps_dying_is_restarted_at_a_bounded_rate(
    example_config: Config, redis_url: str, redis_client: redis.Redis, keys: Keys
) -> None:
    config = example_config.model_copy(update={"redis_prefix": keys.prefix})
    started: list[DrainerProcess] = []

    def start(_config: Config, _url: str) -> DrainerProcess:
        dead: Any = _Dead(pid=1000 + len(started))  # stands in for a multiprocessing.Process
        started.append(DrainerProcess(dead, _Stop()))
        return started[-1]

    now = [0.0]
    deployment = open_deployment(config, redis_url)
    supervisor = DrainerSupervisor(deployment, start=start, clock=lambda: now[0])
    replaced = [supervisor.check() for _ in range(MAX_RESTARTS)]
    assert replaced == [True] * MAX_RESTARTS and len(started) == MAX_RESTARTS + 1
    assert not supervisor.check()  # the window is full: no spinning
    now[0] += RESTART_WINDOW_S / 2
    assert not supervisor.check()
    now[0] = RESTART_WINDOW_S  # the first restart leaves the window
    assert supervisor.check()
    assert len(started) == MAX_RESTARTS + 2
    found = health.ledger_health(redis_client, keys, STALE_S)
    assert found.restarts == MAX_RESTARTS + 1
    assert found.restarted is not None and found.restarted["exitcode"] == 1
    deployment.close()


def test_a_killed_drainer_process_is_replaced_and_the_new_one_drains(
    example_config: Config, tmp_path: Path, redis_url: str, redis_client: redis.Redis, keys: Keys
) -> None:
    config = sqlite_config(example_config, tmp_path).model_copy(
        update={"redis_prefix": keys.prefix,
                "ledger": example_config.ledger.model_copy(update={"flush_interval_s": 0.2})}
    )  # fmt: skip
    deployment = open_deployment(config, redis_url)
    supervisor = DrainerSupervisor(deployment)
    try:
        first = supervisor.current.process
        _wait(lambda: health.ledger_health(redis_client, keys, STALE_S).drainers != [])
        assert first.pid is not None
        os.kill(first.pid, signal.SIGKILL)
        first.join(30)
        assert supervisor.check()
        second = supervisor.current.process
        assert second.pid != first.pid and second.is_alive()
        sink = RedisLedgerSink(redis_client, keys)
        sink.emit(job_events("after-the-kill"))
        _wait(lambda: sink.backlog() == 0)
        found = health.ledger_health(redis_client, keys, STALE_S)
        assert f"{socket.gethostname()}:{second.pid}" in found.drainers
        assert found.restarts == 1 and found.restarted is not None
        assert found.restarted["exitcode"] == -signal.SIGKILL
    finally:
        supervisor.close()
        deployment.close()
    assert not supervisor.current.process.is_alive()


def _wait(done: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Until ``done()``, at most ``timeout_s`` (then it must be done)."""
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert done()


@pytest.fixture(autouse=True)
def _clean_health(redis_client: redis.Redis, keys: Keys) -> None:
    """Every test starts with no drainer and no record (the prefix is the test's own)."""
    redis_client.delete(keys.ledger_drainers(), keys.ledger_health(), keys.ledger_events())
