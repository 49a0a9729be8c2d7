"""The budget gate the dispatcher holds jobs to: refusals, alerts once per window, rebuilding
counters after Redis lost them, the webhook, and a worker's side of the calls."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis

from lanes.broker.message import Envelope
from lanes.kernel.config import BudgetAction, BudgetAlert, BudgetLimit, BudgetSpec, Config
from lanes.kernel.errors import BudgetExceeded
from lanes.layers.budgets.gate import BudgetGate
from lanes.layers.budgets.webhook import Webhook
from lanes.layers.budgets.worker import WorkerBudget
from lanes.router.budgets import Hold, holds
from lanes.router.decision import Step
from lanes.router.job import Job
from lanes.stores.budget import BudgetStore, Refusal, Usage
from lanes.stores.keys import Keys
from lanes.stores.memory.budget import MemoryBudgetStore
from lanes.stores.redis.budget import RedisBudgetStore
from tests.fakes import FakeClock

NOON = datetime(2026, 12, 2, 12, tzinfo=UTC)


class Clock:
    """A settable tz-aware clock."""

    def __init__(self, now: datetime = NOON) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class CountingStore:
    """A :class:`MemoryBudgetStore` that records the name of every method called on it."""

    def __init__(self) -> None:
        self.inner = MemoryBudgetStore()
        self.calls: list[str] = []

    def reserve(
        self, job_id: str, est_usd: float, holds: Sequence[Hold]
    ) -> Refusal | dict[str, Usage]:
        self.calls.append("reserve")
        return self.inner.reserve(job_id, est_usd, holds)

    def usage(self, holds: Sequence[Hold]) -> dict[str, Usage]:
        self.calls.append("usage")
        return self.inner.usage(holds)

    def limits(self) -> dict[str, float]:
        self.calls.append("limits")
        return self.inner.limits()

    def release(self, job_id: str) -> None:
        self.calls.append("release")
        self.inner.release(job_id)

    def rebuild(self, spent_by_counter: Mapping[str, float], holds: Sequence[Hold]) -> None:
        self.calls.append("rebuild")
        self.inner.rebuild(spent_by_counter, holds)

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.inner, name)


def config_with(example_config: Config, **budgets: Any) -> Config:
    return example_config.model_copy(update={"budgets": BudgetSpec.model_validate(budgets)})


def daily(limit_usd: float, **kw: Any) -> BudgetLimit:
    return BudgetLimit.model_validate({"period": "daily", "limit_usd": limit_usd, **kw})


def job(job_id: str, **kw: Any) -> Job:
    return Job.model_validate({"id": job_id, "prompt": "hello", **kw})


def no_ledger(hold: Hold) -> float:
    return 0.0


def gate(
    config: Config,
    store: BudgetStore,
    spent: Callable[[Hold], float] = no_ledger,
    **kw: Any,
) -> BudgetGate:
    if "monotonic" not in kw:  # waits for reservations to settle take no real time
        ticks = FakeClock()
        kw.update(monotonic=ticks, sleep=ticks.advance)
    return BudgetGate(config, store, spent, clock=kw.pop("clock", Clock()), **kw)


# -- refusing -------------------------------------------------------------------------------


def test_admit_refuses_with_a_message_naming_budget_limit_spend_and_reset(
    example_config: Config,
) -> None:
    config = config_with(example_config, limits=[daily(1.0)], alerts=[])
    the_gate = gate(config, MemoryBudgetStore(), spent=lambda hold: 0.98)
    held = the_gate.admit(job("j1"), "claude1", 0.01)
    assert [hold.counter for hold in held] == ["global:daily:2026-12-02"]
    with pytest.raises(BudgetExceeded) as info:
        the_gate.admit(job("j2"), "claude1", 0.03)
    assert info.value.exit_code == 4
    assert info.value.budget == "global:daily"
    assert str(info.value) == (
        "budget global:daily is spent: $0.98 of $1.00 spent (+$0.01 in flight); this job needs"
        " ~$0.03; it resets at 2026-12-03 00:00 UTC (raise it to N USD with `lanes budget"
        " --set-daily N --scope global`)"
    )


def test_admit_names_the_override_limit_and_the_budget_zone(example_config: Config) -> None:
    config = config_with(
        example_config,
        timezone="Europe/Paris",
        limits=[daily(10.0, scope="project", name="acme")],
        alerts=[],
    )
    store = MemoryBudgetStore()
    store.set_limit("project:acme:daily", 0.5)
    the_gate = gate(config, store)
    the_gate.admit(job("j1", project="acme"), "claude1", 0.4)
    the_gate.admit(job("j2", project="beta"), "claude1", 5.0)  # no budget for beta
    with pytest.raises(BudgetExceeded, match=r"\$0.00 of \$0.50 spent .*2026-12-03 00:00 CET"):
        the_gate.admit(job("j3", project="acme"), "claude1", 0.2)


def test_admit_refuses_over_a_per_request_budget_and_reserves_nothing(
    example_config: Config,
) -> None:
    config = config_with(
        example_config, limits=[daily(1.0), BudgetLimit(period="per_request", limit_usd=0.05)]
    )
    store = MemoryBudgetStore()
    the_gate = gate(config, store)
    with pytest.raises(BudgetExceeded, match=r"global:per_request allows \$0.05 per request"):
        the_gate.admit(job("j1"), "claude1", 0.06)
    assert store.is_built() is False  # refused before any reservation was tried


def test_a_budget_full_of_reservations_waits_for_them_to_settle(example_config: Config) -> None:
    config = config_with(example_config, limits=[daily(1.0)], alerts=[])
    store = MemoryBudgetStore()
    ticks = FakeClock()
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # j1's call ends while j2 waits: it cost less
        slept.append(seconds)
        ticks.advance(seconds)
        if len(slept) == 3:
            store.start_call("j1", "0:0:1", 0.7, held)
            store.settle("j1", "0:0:1", 0.2, held, final=True)

    the_gate = gate(config, store, monotonic=ticks, sleep=sleep)
    held = the_gate.admit(job("j1"), "claude1", 0.7)
    (hold,) = the_gate.admit(job("j2"), "claude1", 0.5)
    assert len(slept) == 3
    usage = store.usage([hold])[hold.counter]
    assert (usage.spent_usd, usage.reserved_usd) == (0.2, 0.5)


def test_the_wait_for_reservations_is_bounded_and_refuses_after_it(
    example_config: Config,
) -> None:
    config = config_with(example_config, limits=[daily(1.0)], alerts=[], settle_wait_s=2.0)
    ticks = FakeClock()
    the_gate = gate(config, MemoryBudgetStore(), monotonic=ticks, sleep=ticks.advance)
    the_gate.admit(job("j1"), "claude1", 0.7)
    start = ticks()
    with pytest.raises(BudgetExceeded, match=r"\+\$0.70 in flight"):
        the_gate.admit(job("j2"), "claude1", 0.5)
    assert 2.0 <= ticks() - start < 2.1


def test_a_budget_spent_for_good_refuses_without_waiting(example_config: Config) -> None:
    config = config_with(example_config, limits=[daily(1.0)], alerts=[])
    slept: list[float] = []
    the_gate = gate(config, MemoryBudgetStore(), spent=lambda _hold: 0.8,
                    monotonic=FakeClock(), sleep=slept.append)  # fmt: skip
    the_gate.admit(job("j1"), "claude1", 0.1)
    with pytest.raises(BudgetExceeded):
        the_gate.admit(job("j2"), "claude1", 0.3)  # 0.8 spent + 0.3 > 1.0 whatever settles
    zero = config_with(example_config, limits=[daily(1.0)], alerts=[], settle_wait_s=0)
    at_once = gate(zero, MemoryBudgetStore(), monotonic=FakeClock(), sleep=slept.append)
    at_once.admit(job("j3"), "claude1", 0.7)
    with pytest.raises(BudgetExceeded):
        at_once.admit(job("j4"), "claude1", 0.5)  # settle_wait_s 0: no wait at all
    assert slept == []


def test_cancel_frees_the_reservation(example_config: Config) -> None:
    config = config_with(example_config, limits=[daily(1.0)])
    store = MemoryBudgetStore()
    the_gate = gate(config, store)
    (hold,) = the_gate.admit(job("j1"), "claude1", 0.7)
    assert store.usage([hold])[hold.counter].reserved_usd == 0.7
    the_gate.cancel("j1")
    the_gate.cancel("j1")
    assert store.usage([hold])[hold.counter].reserved_usd == 0.0
    the_gate.admit(job("j2"), "claude1", 0.9)


def test_an_override_set_at_run_time_is_seen_within_a_second(example_config: Config) -> None:
    config = config_with(example_config, limits=[])
    store = MemoryBudgetStore()
    ticks = FakeClock()
    the_gate = gate(config, store, monotonic=ticks)
    the_gate.admit(job("j1", user="bob"), "claude1", 5.0)  # no budget at all
    store.set_limit("user:bob:daily", 1.0)
    the_gate.admit(job("j2", user="bob"), "claude1", 5.0)  # overrides cached: not seen yet
    ticks.advance(1.0)
    with pytest.raises(BudgetExceeded, match="user:bob:daily"):
        the_gate.admit(job("j3", user="bob"), "claude1", 5.0)
    the_gate.admit(job("j4", user="eve"), "claude1", 5.0)


# -- doing nothing without budgets ----------------------------------------------------------


def test_without_budgets_the_store_is_asked_for_overrides_once_a_second(
    example_config: Config,
) -> None:
    config = config_with(example_config, limits=[])
    store = CountingStore()
    ticks = FakeClock()
    the_gate = gate(config, store, monotonic=ticks)
    for i in range(100):
        assert the_gate.pressure(job(f"j{i}")) == set()
        assert the_gate.admit(job(f"j{i}"), "claude1", 1.0) == []
        the_gate.cancel(f"j{i}")
    assert store.calls == ["limits"]
    ticks.advance(1.0)
    the_gate.admit(job("late"), "claude1", 1.0)
    assert store.calls == ["limits", "limits"]


def test_per_request_budgets_alone_never_reserve(example_config: Config) -> None:
    config = config_with(example_config, limits=[BudgetLimit(period="per_request", limit_usd=1)])
    store = CountingStore()
    the_gate = gate(config, store)
    assert the_gate.admit(job("j1"), "claude1", 0.5) == []
    assert the_gate.pressure(job("j1")) == set()
    assert store.calls == ["limits"]


# -- alerts and pressure --------------------------------------------------------------------

ALERTS = [
    BudgetAlert(at=0.5, action=BudgetAction.NOTIFY),
    BudgetAlert(at=0.5, action=BudgetAction.SWITCH_TO_CHEAPER),
    BudgetAlert(at=0.9, action=BudgetAction.BLOCK_EXPENSIVE_MODELS),
]


def test_alerts_fire_once_per_threshold_and_window(
    example_config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_with(example_config, limits=[daily(1.0)], alerts=ALERTS)
    sent: list[dict[str, Any]] = []
    clock = Clock()
    the_gate = gate(config, MemoryBudgetStore(), clock=clock, notify=sent.append)
    with caplog.at_level(logging.WARNING, logger="lanes.alerts"):
        for i in range(3):
            the_gate.admit(job(f"j{i}"), "claude1", 0.3)  # 0.3, 0.6, 0.9
        the_gate.cancel("j0")
        the_gate.admit(job("j3"), "claude1", 0.3)  # 0.9 again: already announced
        clock.now = NOON + timedelta(days=1)
        the_gate.admit(job("j4"), "claude1", 0.6)  # a new window
    assert [(p["counter"], p["threshold"], p["actions"]) for p in sent] == [
        ("global:daily:2026-12-02", 0.5, ["notify", "switch_to_cheaper"]),
        ("global:daily:2026-12-02", 0.9, ["block_expensive_models"]),
        ("global:daily:2026-12-03", 0.5, ["notify", "switch_to_cheaper"]),
    ]
    assert sent[1]["job_id"] == "j2"
    assert sent[1]["fraction"] == pytest.approx(0.9)
    assert sent[1]["resets_at"] == "2026-12-03T00:00:00+00:00"
    json.dumps(sent)  # the webhook's body
    logged = [r.getMessage() for r in caplog.records if r.name == "lanes.alerts"]
    assert len(logged) == 3
    assert logged[0].startswith("budget global:daily at 60% ($0.00 of $1.00, $0.60 in flight)")


def test_pressure_reports_the_actions_of_the_jobs_budgets(example_config: Config) -> None:
    config = config_with(
        example_config,
        limits=[daily(10.0), daily(1.0, scope="project", name="acme"),
                daily(1.0, scope="instance", name="claude1")],
        alerts=ALERTS,
    )  # fmt: skip
    the_gate = gate(config, MemoryBudgetStore(), notify=lambda payload: None)
    the_gate.admit(job("j1", project="acme"), "claude2", 0.95)
    assert the_gate.pressure(job("j2", project="acme")) == {
        BudgetAction.NOTIFY,
        BudgetAction.SWITCH_TO_CHEAPER,
        BudgetAction.BLOCK_EXPENSIVE_MODELS,
    }
    assert the_gate.pressure(job("j3", project="beta")) == set()
    the_gate.admit(job("j4"), "claude1", 0.6)
    assert the_gate.pressure(job("j5")) == set()  # the instance is not known yet
    assert the_gate.pressure(job("j5"), instance_hint="claude1") == {
        BudgetAction.NOTIFY,
        BudgetAction.SWITCH_TO_CHEAPER,
    }


# -- rebuilding after Redis lost the counters -----------------------------------------------


def test_counters_are_rebuilt_from_the_ledger_after_a_redis_restart(
    example_config: Config, redis_client: redis.Redis, keys: Keys
) -> None:
    config = config_with(
        example_config,
        limits=[daily(1.0), daily(1.0, scope="project", name="acme")],
        alerts=[],
    )
    ledger = {"global:daily:2026-12-02": 0.4, "project:acme:daily:2026-12-02": 0.1}
    asked: list[str] = []

    def spent(hold: Hold) -> float:
        asked.append(hold.counter)
        return ledger[hold.counter]

    store = RedisBudgetStore(redis_client, keys)
    the_gate = gate(config, store, spent)
    held = the_gate.admit(job("j1", project="acme"), "claude1", 0.1)
    assert sorted(asked) == sorted(ledger)
    assert store.usage(held) == {
        "global:daily:2026-12-02": Usage(0.4, 0.1, 1.0),
        "project:acme:daily:2026-12-02": Usage(0.1, 0.1, 1.0),
    }
    the_gate.admit(job("j2"), "claude1", 0.1)
    assert len(asked) == 2  # built: the ledger is not read again

    for key in redis_client.scan_iter(f"{keys.prefix}:*"):  # Redis restarted, empty
        redis_client.delete(key)
    ledger["global:daily:2026-12-02"] = 0.85  # what the ledger holds by now
    with pytest.raises(BudgetExceeded, match=r"\$0.85 of \$1.00 spent; this job needs ~\$0.20"):
        the_gate.admit(job("j3"), "claude1", 0.2)
    assert len(asked) == 3
    assert store.is_built()
    the_gate.admit(job("j4", project="acme"), "claude1", 0.15)  # acme rebuilt on first use
    assert len(asked) == 4
    assert store.usage(held)["global:daily:2026-12-02"] == Usage(0.85, 0.15, 1.0)


# -- the webhook ----------------------------------------------------------------------------


class _Collect(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    arrived: threading.Event

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()
        self.arrived.set()

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def collecting_server() -> Iterator[tuple[str, list[dict[str, Any]], threading.Event]]:
    received: list[dict[str, Any]] = []
    arrived = threading.Event()
    handler = type("Handler", (_Collect,), {"received": received, "arrived": arrived})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received, arrived
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_server() -> Iterator[str]:
    """Accepts connections (the kernel does) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(100)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    finally:
        sock.close()


def test_alerts_are_posted_to_the_configured_webhook(example_config: Config) -> None:
    with collecting_server() as (url, received, arrived):
        config = config_with(example_config, limits=[daily(1.0)], webhook_url=url)
        the_gate = gate(config, MemoryBudgetStore())
        the_gate.admit(job("j1"), "claude1", 0.85)
        assert arrived.wait(timeout=10)
    assert len(received) == 1
    assert received[0]["budget"] == "global:daily"
    assert received[0]["threshold"] == 0.8
    assert received[0]["actions"] == ["notify"]
    assert received[0]["spent_usd"] == 0.0
    assert received[0]["reserved_usd"] == 0.85


def test_a_dead_webhook_never_blocks_admit(example_config: Config) -> None:
    with silent_server() as url:
        config = config_with(
            example_config,
            limits=[daily(100.0, scope="user", name=f"u{i}") for i in range(30)],
            webhook_url=url,
            webhook_timeout_s=30,
        )
        the_gate = gate(config, MemoryBudgetStore())
        started = time.monotonic()
        for i in range(30):
            the_gate.admit(job(f"j{i}", user=f"u{i}"), "claude1", 90.0)  # each alerts
        assert time.monotonic() - started < 2.0


def test_a_full_webhook_queue_drops_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with silent_server() as url:
        hook = Webhook(url, timeout_s=30, queue_size=2)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="lanes.budget"):
            for i in range(50):
                hook({"budget": f"user:u{i}:daily"})
        assert time.monotonic() - started < 1.0
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) >= 47  # one in flight, two waiting
    assert "user:u49:daily" in dropped[-1]


def test_an_unreachable_webhook_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    hook = Webhook(f"http://127.0.0.1:{port}/hook", timeout_s=2)
    with caplog.at_level(logging.WARNING, logger="lanes.budget"):
        hook({"budget": "global:daily"})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any("failed" in r.getMessage()
                                                      for r in caplog.records):  # fmt: skip
            time.sleep(0.02)
    assert any("webhook" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records)


# -- a worker's side ------------------------------------------------------------------------


def envelope(job_id: str, instance: str, reserved_usd: float) -> Envelope:
    return Envelope(job=job(job_id), chain=[Step(instance=instance, model="claude-haiku-4-5")],
                    instance=instance, reserved_usd=reserved_usd)  # fmt: skip


def test_worker_budget_settles_on_the_instance_that_ran_the_call(
    example_config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_with(
        example_config,
        limits=[daily(1.0), daily(1.0, scope="instance", name="claude1"),
                daily(1.0, scope="instance", name="claude3")],
    )  # fmt: skip
    store = MemoryBudgetStore()
    clock = Clock()
    held = gate(config, store, clock=clock).admit(job("j1"), "claude1", 0.2)
    worker = WorkerBudget(config, store, clock=clock)
    first = envelope("j1", "claude1", 0.2)
    worker.start_call(first, "0:0:1", 0.2)
    worker.settle(first, "0:0:1", 0.0, final=False)
    moved = envelope("j1", "claude3", 0.2)
    worker.start_call(moved, "1:0:1", 0.2)
    with caplog.at_level(logging.WARNING, logger="lanes.budget"):
        worker.start_call(moved, "1:0:2", 0.2)  # the worker of call 1:0:1 died
    assert any("never settled" in r.getMessage() for r in caplog.records)
    worker.settle(moved, "1:0:2", 0.05, final=True)
    ran = holds(config.budgets, instance="claude3", project=None, user=None, now=clock.now)
    usage = store.usage([*held, *ran])
    assert usage["global:daily:2026-12-02"] == Usage(0.25, 0.0, 1.0)
    assert usage["instance:claude1:daily:2026-12-02"] == Usage(0.2, 0.0, 1.0)  # the orphan
    assert usage["instance:claude3:daily:2026-12-02"] == Usage(0.05, 0.0, 1.0)
    worker.release("j1")
    assert store.usage(held)["global:daily:2026-12-02"].reserved_usd == 0.0


def test_worker_budget_refuses_a_job_no_dispatcher_admitted_once_its_budget_is_spent(
    example_config: Config,
) -> None:
    """A message built by hand (no reservation) spends nothing of a spent budget."""
    config = config_with(example_config, limits=[daily(0.2)])
    store = MemoryBudgetStore()
    clock = Clock()
    gate(config, store, clock=clock).admit(job("j1"), "claude1", 0.2)  # the budget is full
    worker = WorkerBudget(config, store, clock=clock)
    with pytest.raises(BudgetExceeded, match="holds no budget reservation"):
        worker.start_call(envelope("forged", "claude1", 0.0), "0:0:1", 0.05)
    worker.start_call(envelope("j1", "claude1", 0.2), "0:0:1", 0.2)  # admitted: it runs
