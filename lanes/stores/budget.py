"""The budget counters' contract: value types, the :class:`BudgetStore` protocol, money units.

Each :class:`lanes.router.budgets.Hold` (one budget in one window) has a counter of ``spent`` and
``reserved`` money. A job's life against its budgets:

1. :meth:`BudgetStore.reserve` at dispatch: the estimate goes on ``reserved`` of every hold,
   all or nothing, and only if each stays within its limit (the store's override, else the
   hold's). The job's *reservation record* remembers the estimate and the counters it holds.
2. :meth:`BudgetStore.start_call` before each provider call names the call running now (a
   job without a live record, one never admitted, is refused there by a budget already spent).
3. :meth:`BudgetStore.settle` after it: the real cost goes on ``spent`` of the instance that did
   the work; a final settle takes the estimate off ``reserved`` and ends the record, a failed
   call (``final=False``) keeps the reservation for the retry or fallback.
4. :meth:`BudgetStore.release` when the job ends with nothing to settle.

A call that started and never settled (its worker died mid-call) was billed all the same: the
next :meth:`~BudgetStore.start_call` of the job (or its release) counts it as spent at the
estimate; should it settle late after all, only the difference to its real cost is applied.

Money is kept in integer nano-USD (:func:`to_nano`) so that concurrent increments add up
exactly; the API speaks USD floats.

Counters are rebuilt from the durable ledger after the store lost them (a Redis restart):
the store remembers which budgets it has rebuilt, and :meth:`~BudgetStore.reserve` raises
:class:`CountersMissing` for a budget it has not, so the caller rebuilds and tries again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from lanes.router.budgets import Hold, fraction

NANO_PER_USD = 1_000_000_000
RESERVATION_TTL_S = 2 * 86400
"""How long a reservation record lives without news (refreshed by every call on it)."""


MAX_NANO = 2**63 - 1
"""Redis integers are signed 64-bit: no amount may be larger (about 9.2e9 USD)."""


def to_nano(usd: float, what: str = "amount") -> int:
    """USD as integer nano-USD; ``ValueError`` for a negative or non-finite amount, or one
    too large for a Redis integer."""
    if not math.isfinite(usd) or usd < 0 or usd * NANO_PER_USD > MAX_NANO:
        raise ValueError(f"{what} must be a finite amount from 0 to {MAX_NANO / NANO_PER_USD:.3g}"
                         f" USD, got {usd:g}")  # fmt: skip
    return round(usd * NANO_PER_USD)


def to_usd(nano: int) -> float:
    return nano / NANO_PER_USD


class CallStart(IntEnum):
    """What :meth:`BudgetStore.start_call` did (the values are ``budget_start.lua``'s)."""

    STARTED = 0
    ORPHANED = 1
    """An earlier call never settled: it was counted as spent at its estimate."""
    REFUSED = 2
    """No live record and a hold already spent: nothing changed, the call must not run."""


@dataclass(frozen=True)
class Usage:
    """One counter: spent and in-flight USD, and the limit in force (override or config)."""

    spent_usd: float
    reserved_usd: float
    limit_usd: float

    @property
    def fraction(self) -> float:
        """(spent + reserved) / limit; a zero limit counts as fully used."""
        return fraction(self.spent_usd, self.reserved_usd, self.limit_usd)


@dataclass(frozen=True)
class Refusal:
    """A reservation that did not fit ``hold``; ``usage`` is that counter before it."""

    hold: Hold
    usage: Usage


class CountersMissing(Exception):
    """Control flow: the store has not rebuilt the counters of ``budget_ids`` from the ledger
    (a new or restarted Redis). Nothing was reserved; rebuild them and try again."""

    def __init__(self, budget_ids: Sequence[str]) -> None:
        self.budget_ids = tuple(budget_ids)
        super().__init__(f"budget counters not built: {', '.join(self.budget_ids)}")


class BudgetStore(Protocol):
    def reserve(
        self, job_id: str, est_usd: float, holds: Sequence[Hold]
    ) -> Refusal | dict[str, Usage]:
        """Reserve ``est_usd`` on every hold if each stays within its limit, else nothing.

        Returns the usage after it (by counter), or the first :class:`Refusal`. A job that
        already holds a reservation gets its current usage and reserves nothing more. Raises
        :class:`CountersMissing` when a hold's budget was never rebuilt.
        """
        ...

    def start_call(
        self, job_id: str, call_key: str, est_usd: float, holds: Sequence[Hold]
    ) -> CallStart:
        """A provider call ``call_key`` of the job starts now.

        Without a live reservation record (settled, expired, budgets added since, or a job
        sent past the dispatcher) one is made for ``est_usd`` on ``holds``, unless a hold is
        already spent (spent + reserved at or over its limit): :attr:`CallStart.REFUSED`,
        nothing changed. :attr:`CallStart.ORPHANED` when an earlier call was still running
        (never settled): it was counted as spent at its estimate and the estimate reserved
        again for this call.
        """
        ...

    def settle(
        self,
        job_id: str,
        call_key: str,
        actual_usd: float,
        spend_holds: Sequence[Hold],
        final: bool,
    ) -> None:
        """Call ``call_key`` cost ``actual_usd``: it goes on ``spent`` of ``spend_holds``.

        ``final``: the job is done; its estimate leaves ``reserved`` and the record ends.
        Otherwise (a failed call) the reservation stays for the next call. A call already
        counted at its estimate (orphaned) is corrected by the difference only; a call the
        record does not know, or a job without a record, only adds to ``spent``.
        """
        ...

    def release(self, job_id: str) -> None:
        """The job ended with no call to settle: drop its reservation. Idempotent. A call
        still running is counted as spent at the estimate (it may have been billed)."""
        ...

    def usage(self, holds: Sequence[Hold]) -> dict[str, Usage]:
        """Each hold's counter now, by counter. One round trip."""
        ...

    def limits(self) -> dict[str, float]:
        """The overrides: budget id → limit in USD."""
        ...

    def set_limit(self, budget_id: str, limit_usd: float | None) -> None:
        """Override a budget's limit (None: drop the override). ``ValueError`` for a
        malformed budget id or a limit :class:`~lanes.kernel.config.BudgetLimit` refuses (negative,
        not finite, above :data:`~lanes.kernel.config.models.MAX_BUDGET_USD`)."""
        ...

    def rebuild(self, spent_by_counter: Mapping[str, float], holds: Sequence[Hold]) -> None:
        """Set each hold's ``spent`` from ``spent_by_counter`` (USD, by counter; absent: 0),
        zero its ``reserved`` and mark its budget built. Budgets already built are left
        alone, so two processes rebuilding at once do not undo each other's reservations."""
        ...

    def is_built(self) -> bool:
        """Whether any budget was rebuilt since the store was last emptied."""
        ...

    def alert_once(self, counter: str, at: float, ttl_s: int) -> bool:
        """True only the first time threshold ``at`` of ``counter`` is announced."""
        ...

    def forget(self) -> None:
        """Drop counters, reservations, alerts and built marks (overrides stay)."""
        ...


def check_holds(holds: Iterable[Hold]) -> None:
    """``ValueError`` when two holds share a counter (it would be charged twice)."""
    counters = [hold.counter for hold in holds]
    if len(set(counters)) != len(counters):
        raise ValueError(f"holds name a counter more than once: {counters}")


def check_call(call_key: str) -> None:
    """``ValueError`` for an empty call key (``""`` means "no call running")."""
    if not call_key:
        raise ValueError("call_key must not be empty")
