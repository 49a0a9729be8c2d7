"""The worker's side of the budgets: name each provider call and settle its real cost
(:class:`WorkerBudget`), and put back limits set from the CLI after a Redis restart
(:func:`restore_overrides`, run by the ledger drainer, which holds the ledger)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from lanes.broker.message import Envelope
from lanes.kernel.config import Config
from lanes.kernel.errors import BudgetExceeded
from lanes.layers.budgets.gate import LIMITS_TTL_S, Overrides, utc_now
from lanes.router.budgets import Hold, holds, parse_budget_id, raise_command, usd
from lanes.stores.budget import BudgetStore, CallStart
from lanes.stores.ledger import Ledger

log = logging.getLogger("lanes.budget")


class WorkerBudget:
    """A worker's side of the budgets: name each provider call, settle its cost.

    Holds are those of the instance running the call (after a fallback, not the one the
    reservation was made for).
    """

    def __init__(
        self,
        config: Config,
        store: BudgetStore,
        *,
        clock: Callable[[], datetime] = utc_now,
        limits_ttl_s: float = LIMITS_TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spec = config.budgets
        self._store = store
        self._clock = clock
        self._overrides = Overrides(store, limits_ttl_s, monotonic)

    def _off(self) -> bool:
        """No budget exists at all: nothing to hold or settle (no Redis round trip but the
        overrides' read, at most once per ``limits_ttl_s``)."""
        return not self._spec.limits and not self._overrides()

    def _holds(self, env: Envelope) -> list[Hold]:
        return holds(
            self._spec,
            instance=env.instance,
            project=env.job.project,
            user=env.job.user,
            now=self._clock(),
            overrides=self._overrides(),
        )

    def start_call(self, env: Envelope, call_key: str, est_usd: float) -> None:
        """Call ``call_key`` of the job, estimated at ``est_usd``, starts; an earlier call
        that never settled is counted as spent at the estimate (logged). :class:`BudgetExceeded`
        when the job holds no reservation (no dispatcher admitted it, e.g. a message built by
        hand) and one of its budgets is already spent."""
        holds = [] if self._off() else self._holds(env)
        if not holds:
            return
        found = self._store.start_call(env.job.id, call_key, est_usd, holds)
        if found is CallStart.REFUSED:
            raise BudgetExceeded(
                holds[0].budget_id,
                f"job {env.job.id} holds no budget reservation (no dispatcher admitted it) and"
                f" a budget it is held to is spent: {', '.join(h.budget_id for h in holds)}",
            )
        if found is CallStart.ORPHANED:
            log.warning(
                "job %s: an earlier call never settled; counted at its estimate of %s",
                env.job.id,
                usd(est_usd),
            )

    def settle(self, env: Envelope, call_key: str, actual_usd: float, *, final: bool) -> None:
        """Call ``call_key`` cost ``actual_usd``; ``final``: the job is done."""
        if self._off():
            return
        self._store.settle(env.job.id, call_key, actual_usd, self._holds(env), final)

    def release(self, job_id: str) -> None:
        """The job ended without a call to settle."""
        if self._off():
            return
        self._store.release(job_id)


def restore_overrides(store: BudgetStore, ledger: Ledger, reported: set[str] | None = None) -> int:
    """After a Redis restart, put back the limits set with ``lanes budget --set-*`` from the
    ledger, where they are kept durably; the number restored. Only while no counter has been
    rebuilt yet (the marker is gone with the restart), so it costs one read otherwise.

    A row that is no valid limit (``1e308``, above the maximum) is logged and skipped, never
    allowed to stop the others or the drainer; ``reported`` remembers the ids already logged,
    so that a drainer repeating this every round says so once."""
    if store.is_built():
        return 0
    held = store.limits()
    restored = 0
    for row in ledger.budget_limits():
        if row.budget_id in held:
            continue
        try:
            limit = parse_budget_id(row.budget_id, row.limit_usd)
        except ValueError as exc:
            if reported is None or row.budget_id not in reported:
                log.error("budget limit in the ledger skipped, not restored: %s; set it again"
                          " with `%s`", exc, raise_command(row.budget_id))  # fmt: skip
            if reported is not None:
                reported.add(row.budget_id)
            continue
        store.set_limit(limit.budget_id, limit.limit_usd)
        restored += 1
    if restored:
        log.warning("restored %d budget limit(s) from the ledger", restored)
    return restored
