"""Opening the books for a command: the ledger (SQL), brought up to date from the hand-off
queue in Redis first, and the budget store.

Reports read the database; events still waiting in Redis are drained into it first, so a
report includes the jobs that just ended. With no Redis reachable the report reads what the
database holds and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from lanes.deployment import open_deployment
from lanes.kernel.config import BudgetLimit, BudgetPeriod, BudgetScope, Config
from lanes.kernel.errors import InfrastructureError, JobError
from lanes.layers.budgets.gate import BudgetGate, ledger_spent, valid_overrides
from lanes.router.budgets import Hold, budget_limits, parse_budget_id, window_hold
from lanes.stores.budget import BudgetStore, Usage
from lanes.stores.ledger import BudgetLimitRow
from lanes.stores.sql import SqlLedger, open_ledger
from lanes.workers.services.ledger_drain import drain_all


@contextmanager
def books(config: Config, *, warn: Callable[[str], None]) -> Iterator[SqlLedger]:
    """The ledger, after draining what Redis holds for it (``warn`` hears why not)."""
    ledger = open_ledger(config)
    try:
        catch_up(config, ledger, warn=warn)
        yield ledger
    finally:
        ledger.close()


def catch_up(config: Config, ledger: SqlLedger, *, warn: Callable[[str], None]) -> int:
    """Drain the hand-off queue into ``ledger``; the number of events moved."""
    try:
        deployment = open_deployment(config)
    except InfrastructureError:
        warn("no Redis reachable: showing what the database holds (events still queued in "
             "Redis are added when it runs again)")  # fmt: skip
        return 0
    try:
        return drain_all(deployment.stores.ledger, ledger, timeout_s=5.0)
    except InfrastructureError as exc:
        warn(f"ledger events in Redis not read ({exc}): showing what the database holds")
        return 0
    finally:
        deployment.close()


def budget_rows(
    config: Config, store: BudgetStore, ledger: SqlLedger, now: datetime
) -> list[dict[str, Any]]:
    """Every budget in force with its spend in the current window (counters rebuilt from the
    ledger first where Redis lost them)."""
    overrides = valid_overrides(store.limits())
    limits = budget_limits(config.budgets, overrides)
    windowed = {
        limit.budget_id: window_hold(limit, config.budgets.timezone, now)
        for limit in limits
        if limit.period is not BudgetPeriod.PER_REQUEST
    }
    gate = BudgetGate(config, store, ledger_spent(ledger))
    gate.rebuild(list(windowed.values()))
    usage = store.usage(list(windowed.values()))
    return [_budget_row(limit, windowed, usage, overrides) for limit in limits]


def _budget_row(
    limit: BudgetLimit,
    windowed: dict[str, Hold],
    usage: dict[str, Usage],
    overrides: dict[str, float],
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "budget_id": limit.budget_id,
        "scope": limit.scope.value,
        "name": limit.name,
        "period": limit.period.value,
        "limit_usd": limit.limit_usd,
        "source": "lanes budget --set" if limit.budget_id in overrides else "config",
        "spent_usd": None,
        "reserved_usd": None,
        "used": None,
        "resets_at": None,
    }
    hold = windowed.get(limit.budget_id)
    if hold is not None:
        found = usage[hold.counter]
        row.update(spent_usd=found.spent_usd, reserved_usd=found.reserved_usd,
                   used=found.fraction, resets_at=hold.resets_at.isoformat())  # fmt: skip
    return row


def budget_limit(config: Config, budget_id: str, limit_usd: float) -> BudgetLimit:
    """The budget ``budget_id`` with ``limit_usd``, checked: :class:`JobError` (exit 2) for a
    malformed id, an unknown instance, or a limit that is negative, not finite or above
    :data:`~lanes.kernel.config.models.MAX_BUDGET_USD`. Touches nothing."""
    try:
        limit = parse_budget_id(budget_id, limit_usd)
    except ValueError as exc:
        raise JobError(str(exc)) from None
    if limit.scope is BudgetScope.INSTANCE and limit.name not in config.instances:
        raise JobError(f"unknown instance {limit.name!r}; use one of {', '.join(config.lanes())}")
    return limit


def save_budget(store: BudgetStore, ledger: SqlLedger, limit: BudgetLimit, now: float) -> None:
    """Keep a checked limit (:func:`budget_limit`): durably in the ledger first, then in Redis
    where dispatchers read it."""
    ledger.set_budget_limit(
        BudgetLimitRow(budget_id=limit.budget_id, scope=limit.scope.value, name=limit.name,
                       period=limit.period.value, limit_usd=limit.limit_usd, updated_at=now)
    )  # fmt: skip
    store.set_limit(limit.budget_id, limit.limit_usd)
