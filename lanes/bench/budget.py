"""``lanes bench budget``: many dispatcher processes spend against one small daily budget at
once, each until the budget refuses it; then how far the spend went over the limit.

Real parts throughout: a Redis of its own (db 15, flushed), the simulator in its own process,
worker processes serving every lane, and ``dispatchers`` separate processes (spawned, released
together once all are up) each submitting jobs through its own :class:`lanes.client.Lanes`
until :class:`~lanes.kernel.errors.BudgetExceeded`, then waiting for its accepted jobs. Reservation
and settlement are the product's (one Lua script each); the spend reported is the ledger's
(every call that started), after every job ended and every event was drained.

Bars: ``max_overspend_usd`` (spend beyond the limit) at most ``max_reservation_usd`` (the
largest reservation one request made), and ``spent_fraction`` (spend ÷ budget) at least
:data:`SPENT_FRACTION_BAR`: a dispatcher refused only because of reservations in flight waits
for them to settle (``budgets.settle_wait_s``) instead of giving up with money left.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lanes.bench.harness import bench_redis, derived_config, simulated_stack, simulated_unlimited
from lanes.client import Lanes
from lanes.kernel.config import Config
from lanes.kernel.errors import BudgetExceeded, LanesError
from lanes.ops.ledger_view import books

BUDGET_DB = 15
SPENT_FRACTION_BAR = 0.95
PROMPTS = (
    "Summarise the trade-offs of optimistic locking in two paragraphs",
    "Write a function that merges overlapping intervals, with tests",
    "Explain the difference between TCP and UDP for a new engineer",
    "Draft release notes for a version that fixes three crashes",
)


@dataclass(frozen=True)
class BudgetSettings:
    dispatchers: int = 50
    budget_usd: float = 1.00
    max_tokens: int = 256
    model: str = "claude-opus-4-5"
    """Every job pins it: the dearest model of the default lanes, so $1 is spent in a few
    hundred jobs."""
    max_jobs_each: int = 200
    """A dispatcher stops here even if never refused (a budget far above the spend)."""
    workers: int = 2
    concurrency: int = 32
    latency_s: float = 0.05


def budget_config(
    config: Config, directory: Path, redis_url: str, settings: BudgetSettings
) -> tuple[Config, Path]:
    """The config with one global daily budget, every lane simulated without limits, the
    cache off (every job is a call) and a ledger of the bench's own."""
    database = directory / "ledger.db"
    database.unlink(missing_ok=True)

    def change(data: dict[str, Any]) -> None:
        data.update(redis_url=redis_url, redis_prefix="bench-budget",
                    database_url=f"sqlite:///{database.resolve()}")  # fmt: skip
        simulated_unlimited(data)
        data["budgets"] = {**data.get("budgets", {}), "limits": [
            {"scope": "global", "period": "daily", "limit_usd": settings.budget_usd}]}  # fmt: skip

    return derived_config(config, directory / "budget-config.yaml", change)


def run_budget(
    config: Config, settings: BudgetSettings, progress: Callable[[str], None]
) -> dict[str, Any]:
    state = Path(config.state_dir)
    home, logs = state / "bench-budget", state / "logs"
    with bench_redis(config, db=BUDGET_DB) as url:
        cfg, path = budget_config(config, home, url, settings)
        with simulated_stack(cfg, path, url, latency_s=settings.latency_s,
                             workers=settings.workers, concurrency=settings.concurrency,
                             log_dir=logs, name="bench-budget"):  # fmt: skip
            runs = _dispatch(cfg, url, settings, progress)
            spent = _ledger_spend(cfg, progress)
    return report(settings, runs, spent)


def _dispatch(
    cfg: Config, url: str, settings: BudgetSettings, progress: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Start the dispatchers (spawned: a fresh interpreter each, as separate hosts would be),
    release them together, collect what each one did."""
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    out: multiprocessing.Queue[dict[str, Any]] = context.Queue()
    procs = [
        context.Process(target=_dispatcher, args=(cfg, url, settings, i, go, out), daemon=True)
        for i in range(settings.dispatchers)
    ]
    for proc in procs:
        proc.start()
    ready = [out.get(timeout=300) for _ in procs]  # each says it is up
    progress(f"{len(ready)} dispatchers up; spending ${settings.budget_usd:g}")
    go.set()
    try:
        runs = [out.get(timeout=600) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    return runs


def _dispatcher(
    cfg: Config,
    url: str,
    settings: BudgetSettings,
    index: int,
    go: multiprocessing.synchronize.Event,
    out: multiprocessing.Queue[dict[str, Any]],
) -> None:
    """One dispatcher process: submit until refused, then wait for what was accepted."""
    out.put({"ready": index})
    go.wait()
    try:
        out.put(_spend_until_refused(cfg, url, settings, index))
    except Exception as exc:  # report it: the parent must not wait for a dead child
        out.put({"accepted": 0, "refused": False, "errors": 1, "max_reservation_usd": 0.0,
                 "crash": f"{type(exc).__name__}: {exc}"})  # fmt: skip


def _spend_until_refused(
    cfg: Config, url: str, settings: BudgetSettings, index: int
) -> dict[str, Any]:
    accepted, reservations, refused = [], [], False
    with Lanes(cfg, url) as lanes:
        for n in range(settings.max_jobs_each):
            job = {"prompt": f"{PROMPTS[n % len(PROMPTS)]} (dispatcher {index}, job {n})",
                   "max_tokens": settings.max_tokens, "model": settings.model}  # fmt: skip
            try:
                envelope, _ = lanes.dispatcher.prepare(job)
                handle = lanes.submit(envelope.job)
            except BudgetExceeded:
                refused = True
                break
            accepted.append(handle)
            reservations.append(envelope.reserved_usd)
        errors = 0
        for handle in accepted:
            try:
                handle.get(timeout_s=300)
            except LanesError:
                errors += 1
    return {"accepted": len(accepted), "refused": refused, "errors": errors,
            "max_reservation_usd": max(reservations, default=0.0)}  # fmt: skip


def _ledger_spend(cfg: Config, progress: Callable[[str], None]) -> float:
    """Every call the ledger holds, once every queued event is in."""
    with books(cfg, warn=progress) as ledger:
        return ledger.spend_since(datetime.fromtimestamp(0, UTC))


def report(settings: BudgetSettings, runs: list[dict[str, Any]], spent: float) -> dict[str, Any]:
    max_reservation = max((r["max_reservation_usd"] for r in runs), default=0.0)
    overspend = max(0.0, spent - settings.budget_usd)
    return {
        "dispatchers": settings.dispatchers,
        "budget_usd": settings.budget_usd,
        "spent_usd": round(spent, 6),
        "spent_fraction": round(spent / settings.budget_usd, 4),
        "max_overspend_usd": round(overspend, 6),
        "max_reservation_usd": round(max_reservation, 6),
        "within_one_reservation": overspend <= max_reservation,
        "spent_to_the_limit": spent >= SPENT_FRACTION_BAR * settings.budget_usd,
        "jobs_accepted": sum(r["accepted"] for r in runs),
        "dispatchers_refused": sum(r["refused"] for r in runs),
        "job_errors": sum(r["errors"] for r in runs),
        **({"crashes": crashes} if (crashes := [r["crash"] for r in runs if "crash" in r]) else {}),
    }
