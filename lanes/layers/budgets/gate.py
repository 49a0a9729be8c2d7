"""The dispatcher's side of the budgets: :class:`BudgetGate`, over a
:class:`~lanes.stores.budget.BudgetStore` (the worker's side is
:class:`~lanes.layers.budgets.worker.WorkerBudget`).

At submit, :meth:`BudgetGate.admit` checks the ``per_request`` budgets, then reserves the
job's estimated cost on its daily and monthly budgets (all or nothing) and announces the alert
thresholds the reservation crossed, once per budget window. A budget full only because of
reservations in flight (what is spent plus this job would fit) is waited on, for at most
``budgets.settle_wait_s``, polling every :data:`SETTLE_POLL_S`: reservations settle at what
calls really cost, usually less, so the budget can be spent to its limit. Before routing,
:meth:`BudgetGate.pressure` says which alert actions (``switch_to_cheaper``,
``block_expensive_models``) are in force for the job. Around each provider call the worker's
:class:`~lanes.layers.budgets.worker.WorkerBudget` names the call and settles its real cost.

Overrides (``lanes budget --set-*``) live in the store; the gate and the worker's side
(:mod:`lanes.layers.budgets.worker`) read them at most once per :data:`LIMITS_TTL_S`. Without any
budget in the config and without overrides, nothing else touches the store.

After the store lost its counters (a Redis restart), the first reservation on a budget
rebuilds that budget's counter from the durable ledger (``spent``) and tries again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from lanes.kernel.config import BudgetAction, BudgetScope, Config
from lanes.kernel.errors import BudgetExceeded, InfrastructureError
from lanes.layers.budgets.webhook import Webhook
from lanes.router.budgets import (
    Hold,
    active_actions,
    check_per_request,
    crossed,
    exceeded_message,
    holds,
    parse_budget_id,
    raise_command,
    usd,
)
from lanes.router.job import Job
from lanes.stores.budget import BudgetStore, CountersMissing, Refusal, Usage
from lanes.stores.ledger import Ledger

log = logging.getLogger("lanes.budget")
alerts = logging.getLogger("lanes.alerts")

LIMITS_TTL_S = 1.0
"""How long a process trusts the overrides it read from the store."""
SETTLE_POLL_S = 0.05
"""How often a dispatcher waiting for reservations to settle tries again."""

Notify = Callable[[dict[str, Any]], None]
"""Receives each alert's payload (JSON-able); must return at once."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class Overrides:
    """The store's overrides, read at most once per ``ttl_s`` (monotonic clock)."""

    def __init__(self, store: BudgetStore, ttl_s: float, clock: Callable[[], float]) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._value: dict[str, float] = {}
        self._read_at_s: float | None = None

    def __call__(self) -> dict[str, float]:
        with self._lock:
            now_s = self._clock()
            if self._read_at_s is None or now_s - self._read_at_s >= self._ttl_s:
                self._value = valid_overrides(self._store.limits())
                self._read_at_s = now_s
            return self._value


def valid_overrides(overrides: Mapping[str, float]) -> dict[str, float]:
    """The overrides whose id and limit are valid; others (a malformed id written by hand
    into Redis, a limit above :data:`~lanes.kernel.config.models.MAX_BUDGET_USD`) are logged with
    the command that sets them again, and left out."""
    out: dict[str, float] = {}
    for budget_id, limit_usd in overrides.items():
        try:
            parse_budget_id(budget_id, limit_usd)
        except ValueError as exc:
            log.warning("ignoring budget override: %s; set it again with `%s`", exc,
                        raise_command(budget_id))  # fmt: skip
            continue
        out[budget_id] = limit_usd
    return out


class BudgetGate:
    """What the dispatcher holds jobs to. Thread-safe if the store is.

    ``spent(hold)``: the USD the durable ledger holds for the hold's budget and window (only
    called to rebuild counters; see :func:`ledger_spent`). ``clock``: now, tz-aware.
    ``notify``: receives each alert payload; None posts them to ``budgets.webhook_url`` when
    one is set (:class:`Webhook`). Alerts are logged on ``lanes.alerts`` either way.
    """

    def __init__(
        self,
        config: Config,
        store: BudgetStore,
        spent: Callable[[Hold], float],
        *,
        clock: Callable[[], datetime] = utc_now,
        notify: Notify | None = None,
        limits_ttl_s: float = LIMITS_TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._spec = config.budgets
        self._monotonic = monotonic
        self._sleep = sleep
        self._store = store
        self._spent = spent
        self._clock = clock
        url = self._spec.webhook_url
        default = Webhook(url, self._spec.webhook_timeout_s) if url else None
        self._notify = notify if notify is not None else default
        self._overrides = Overrides(store, limits_ttl_s, monotonic)

    def _active(self) -> dict[str, float] | None:
        """The overrides, or None when no budget exists at all (nothing to do)."""
        overrides = self._overrides()
        return overrides if self._spec.limits or overrides else None

    def _holds(self, job: Job, instance: str | None, overrides: Mapping[str, float]) -> list[Hold]:
        return holds(
            self._spec,
            instance=instance,
            project=job.project,
            user=job.user,
            now=self._clock(),
            overrides=overrides,
        )

    def pressure(self, job: Job, instance_hint: str | None = None) -> set[BudgetAction]:
        """The alert actions in force for ``job`` now: those of every threshold one of its
        daily or monthly budgets has reached (spent + in flight). Instance budgets count only
        for ``instance_hint``. No store round trip (besides the overrides) when the job has
        no such budget."""
        overrides = self._active()
        if overrides is None:
            return set()
        job_holds = self._holds(job, instance_hint, overrides)
        if not job_holds:
            return set()
        usage = self._store.usage(job_holds)
        fractions = {hold.budget_id: usage[hold.counter].fraction for hold in job_holds}
        return active_actions(self._spec, fractions)

    def admit(self, job: Job, instance: str, est_usd: float) -> list[Hold]:
        """Hold ``job`` (to run on ``instance``, costing about ``est_usd``) to its budgets.

        Raises :class:`BudgetExceeded` (nothing reserved) when a ``per_request`` budget is
        below the estimate or a daily/monthly budget cannot take it. Returns the holds now
        reserved (empty: no daily or monthly budget covers the job).
        """
        overrides = self._active()
        if overrides is None:
            return []
        check_per_request(
            self._spec,
            est_usd,
            instance=instance,
            project=job.project,
            user=job.user,
            overrides=overrides,
        )
        job_holds = self._holds(job, instance, overrides)
        if not job_holds:
            return []
        result = self._reserve_or_wait(job.id, est_usd, job_holds)
        if isinstance(result, Refusal):
            usage, hold = result.usage, replace(result.hold, limit_usd=result.usage.limit_usd)
            raise BudgetExceeded(
                hold.budget_id,
                exceeded_message(hold, usage.spent_usd, usage.reserved_usd, est_usd),
            )
        self._announce(job, job_holds, result)
        return job_holds

    def _reserve_or_wait(
        self, job_id: str, est_usd: float, job_holds: Sequence[Hold]
    ) -> Refusal | dict[str, Usage]:
        """:meth:`_reserve`, tried again while the refusal is only a matter of reservations in
        flight, until ``budgets.settle_wait_s`` passes."""
        deadline = self._monotonic() + self._spec.settle_wait_s
        result = self._reserve(job_id, est_usd, job_holds)
        if isinstance(result, Refusal) and settling(result.usage, est_usd):
            wait_s = self._spec.settle_wait_s
            log.info("budget %s is full of reservations in flight; job %s waits up to %gs for"
                     " them to settle", result.hold.budget_id, job_id, wait_s)  # fmt: skip
        while (
            isinstance(result, Refusal)
            and settling(result.usage, est_usd)
            and self._monotonic() < deadline
        ):
            self._sleep(SETTLE_POLL_S)
            result = self._reserve(job_id, est_usd, job_holds)
        return result

    def _reserve(
        self, job_id: str, est_usd: float, job_holds: Sequence[Hold]
    ) -> Refusal | dict[str, Usage]:
        try:
            return self._store.reserve(job_id, est_usd, job_holds)
        except CountersMissing as missing:
            self.rebuild([h for h in job_holds if h.budget_id in missing.budget_ids])
        try:
            return self._store.reserve(job_id, est_usd, job_holds)
        except CountersMissing as missing:
            raise InfrastructureError(
                f"budget counters of {', '.join(missing.budget_ids)} vanished right after"
                " they were rebuilt (was the store reset meanwhile?)"
            ) from None

    def rebuild(self, to_build: Sequence[Hold]) -> None:
        """Rebuild the counters of ``to_build`` from the ledger (``spent``)."""
        spent = {hold.counter: self._spent(hold) for hold in to_build}
        self._store.rebuild(spent, to_build)
        for hold in to_build:
            log.info(
                "budget %s rebuilt from the ledger: %s spent",
                hold.counter,
                usd(spent[hold.counter]),
            )

    def _announce(self, job: Job, job_holds: Sequence[Hold], usage: Mapping[str, Usage]) -> None:
        """Log and notify every alert threshold crossed, once per budget window."""
        for hold in job_holds:
            now = usage[hold.counter]
            by_threshold: dict[float, list[BudgetAction]] = {}
            for alert in crossed(self._spec, now.fraction):
                by_threshold.setdefault(alert.at, []).append(alert.action)
            for at, actions in by_threshold.items():
                if self._store.alert_once(hold.counter, at, hold.ttl_s):
                    self._alert(alert_payload(hold, now, at, actions, job.id))

    def _alert(self, payload: dict[str, Any]) -> None:
        alerts.warning(
            "budget %s at %.0f%% (%s of %s, %s in flight); threshold %.0f%%: %s",
            payload["budget"],
            payload["fraction"] * 100,
            usd(payload["spent_usd"]),
            usd(payload["limit_usd"]),
            usd(payload["reserved_usd"]),
            payload["threshold"] * 100,
            ", ".join(payload["actions"]),
        )
        if self._notify is not None:
            self._notify(payload)

    def cancel(self, job_id: str) -> None:
        """Drop the reservation of a job that will not run (its submit was undone).
        Idempotent; no store round trip when no budget exists."""
        if self._active() is not None:
            self._store.release(job_id)


def settling(usage: Usage, est_usd: float) -> bool:
    """Whether a refused budget would take the job once its reservations in flight settle:
    what is spent plus the job fits the limit, and something is in flight."""
    return usage.reserved_usd > 0 and usage.spent_usd + est_usd <= usage.limit_usd


def alert_payload(
    hold: Hold, usage: Usage, at: float, actions: Sequence[BudgetAction], job_id: str
) -> dict[str, Any]:
    """What an alert says, as JSON for the log and the webhook."""
    return {
        "event": "budget_alert",
        "budget": hold.budget_id,
        "counter": hold.counter,
        "threshold": at,
        "actions": [action.value for action in actions],
        "fraction": usage.fraction,
        "spent_usd": usage.spent_usd,
        "reserved_usd": usage.reserved_usd,
        "limit_usd": usage.limit_usd,
        "resets_at": hold.resets_at.isoformat(),
        "job_id": job_id,
    }


def ledger_spent(ledger: Ledger) -> Callable[[Hold], float]:
    """``spent`` for :class:`BudgetGate`: what ``ledger`` holds for a hold's budget since
    its window started (calls that never settled count at their reservation)."""

    def spent(hold: Hold) -> float:
        limit = parse_budget_id(hold.budget_id)
        where = {} if limit.scope is BudgetScope.GLOBAL else {limit.scope.value: limit.name}
        return ledger.spend_since(hold.starts_at, **where)

    return spent
