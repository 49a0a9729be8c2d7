"""Budget counters in this process's memory, with the semantics of
:class:`~lanes.stores.redis.budget.RedisBudgetStore` (the same nano-USD arithmetic, the same
reservation records, one lock for what a script does atomically). For tests and for a single
process without Redis. Nothing expires: TTLs are accepted and ignored.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lanes.router.budgets import Hold, parse_budget_id
from lanes.stores.budget import (
    CallStart,
    CountersMissing,
    Refusal,
    Usage,
    check_call,
    check_holds,
    to_nano,
    to_usd,
)


@dataclass
class _Counter:
    spent: int = 0
    reserved: int = 0

    def bump(self, spent: int = 0, reserved: int = 0) -> None:
        """Add (never below zero, as the scripts clamp)."""
        self.spent = max(0, self.spent + spent)
        self.reserved = max(0, self.reserved + reserved)


@dataclass
class _Record:
    est: int
    held: list[str]
    call: str = ""
    orphans: dict[str, int] = field(default_factory=dict)
    done: bool = False


class MemoryBudgetStore:
    """:class:`BudgetStore` in dicts. Thread-safe; not shared across processes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, _Counter] = {}
        self._records: dict[str, _Record] = {}
        self._limits: dict[str, int] = {}
        self._built: set[str] = set()
        self._alerted: set[tuple[str, float]] = set()

    def reserve(
        self, job_id: str, est_usd: float, holds: Sequence[Hold]
    ) -> Refusal | dict[str, Usage]:
        """See :meth:`BudgetStore.reserve`."""
        check_holds(holds)
        est = to_nano(est_usd, "est_usd")
        limits = [to_nano(hold.limit_usd, "limit_usd") for hold in holds]
        with self._lock:
            missing = [hold.budget_id for hold in holds if hold.budget_id not in self._built]
            if missing:
                raise CountersMissing(missing)
            record = self._records.get(job_id)
            if record is None or record.done:
                for hold, limit in zip(holds, limits, strict=True):
                    if not self._fits(hold, limit, est):
                        return Refusal(hold, self._usage(hold, limit))
                self._hold(job_id, est, holds, call="")
            return {
                hold.counter: self._usage(hold, lim)
                for hold, lim in zip(holds, limits, strict=True)
            }

    def _fits(self, hold: Hold, limit: int, est: int) -> bool:
        counter = self._counter(hold.counter)
        return counter.spent + counter.reserved + est <= self._limits.get(hold.budget_id, limit)

    def _usage(self, hold: Hold, limit: int) -> Usage:
        counter = self._counter(hold.counter)
        return Usage(
            spent_usd=to_usd(counter.spent),
            reserved_usd=to_usd(counter.reserved),
            limit_usd=to_usd(self._limits.get(hold.budget_id, limit)),
        )

    def _counter(self, counter: str) -> _Counter:
        return self._counters.setdefault(counter, _Counter())

    def _hold(self, job_id: str, est: int, holds: Sequence[Hold], call: str) -> None:
        """Reserve ``est`` on ``holds`` for the job (keeping what an ended record knows)."""
        for hold in holds:
            self._counter(hold.counter).bump(reserved=est)
        previous = self._records.get(job_id)
        orphans = previous.orphans if previous is not None else {}
        held = [hold.counter for hold in holds]
        self._records[job_id] = _Record(est=est, held=held, call=call, orphans=orphans)

    def _bump(self, counters: Iterable[str], spent: int = 0, reserved: int = 0) -> None:
        for counter in counters:
            self._counter(counter).bump(spent, reserved)

    def start_call(
        self, job_id: str, call_key: str, est_usd: float, holds: Sequence[Hold]
    ) -> CallStart:
        """See :meth:`BudgetStore.start_call`."""
        check_holds(holds)
        check_call(call_key)
        est = to_nano(est_usd, "est_usd")
        limits = [to_nano(hold.limit_usd, "limit_usd") for hold in holds]
        with self._lock:
            record = self._records.get(job_id)
            if record is None or record.done:
                if any(self._spent(h, lim) for h, lim in zip(holds, limits, strict=True)):
                    return CallStart.REFUSED
                self._hold(job_id, est, holds, call=call_key)
                return CallStart.STARTED
            if record.call in ("", call_key):
                record.call = call_key
                return CallStart.STARTED
            self._bump(record.held, spent=record.est, reserved=est - record.est)
            record.orphans[record.call] = record.est
            record.est, record.call = est, call_key
            return CallStart.ORPHANED

    def _spent(self, hold: Hold, limit: int) -> bool:
        """The hold's counter is at or over its limit: nothing more fits."""
        counter = self._counter(hold.counter)
        return counter.spent + counter.reserved >= self._limits.get(hold.budget_id, limit)

    def settle(
        self,
        job_id: str,
        call_key: str,
        actual_usd: float,
        spend_holds: Sequence[Hold],
        final: bool,
    ) -> None:
        """See :meth:`BudgetStore.settle`."""
        check_holds(spend_holds)
        check_call(call_key)
        actual = to_nano(actual_usd, "actual_usd")
        with self._lock:
            self._bump((hold.counter for hold in spend_holds), spent=actual)
            record = self._records.get(job_id)
            if record is None:
                return
            if record.call != call_key:
                self._settle_orphan(job_id, record, call_key)
            elif final:
                self._bump(record.held, reserved=-record.est)
                self._end(job_id, record)
            else:
                record.call = ""

    def _settle_orphan(self, job_id: str, record: _Record, call_key: str) -> None:
        """A late settle: take the orphan's estimate back off spent (actual is on already)."""
        orphan = record.orphans.pop(call_key, None)
        if orphan is None:
            return
        self._bump(record.held, spent=-orphan)
        if record.done and not record.orphans:
            del self._records[job_id]

    def _end(self, job_id: str, record: _Record) -> None:
        """End a record whose estimate is off ``reserved``; keep it while orphans may settle."""
        if record.orphans:
            record.done, record.est, record.call = True, 0, ""
        else:
            del self._records[job_id]

    def release(self, job_id: str) -> None:
        """See :meth:`BudgetStore.release`."""
        with self._lock:
            record = self._records.get(job_id)
            if record is None or record.done:
                return
            running = record.call != ""
            self._bump(record.held, spent=record.est if running else 0, reserved=-record.est)
            if running:
                record.orphans[record.call] = record.est
            self._end(job_id, record)

    def usage(self, holds: Sequence[Hold]) -> dict[str, Usage]:
        """See :meth:`BudgetStore.usage`."""
        with self._lock:
            return {
                hold.counter: self._usage(hold, to_nano(hold.limit_usd, "limit_usd"))
                for hold in holds
            }

    def limits(self) -> dict[str, float]:
        """See :meth:`BudgetStore.limits`."""
        with self._lock:
            return {budget_id: to_usd(nano) for budget_id, nano in self._limits.items()}

    def set_limit(self, budget_id: str, limit_usd: float | None) -> None:
        """See :meth:`BudgetStore.set_limit`."""
        parse_budget_id(budget_id, 0.0 if limit_usd is None else limit_usd)
        with self._lock:
            if limit_usd is None:
                self._limits.pop(budget_id, None)
            else:
                self._limits[budget_id] = to_nano(limit_usd, "limit_usd")

    def rebuild(self, spent_by_counter: Mapping[str, float], holds: Sequence[Hold]) -> None:
        """See :meth:`BudgetStore.rebuild`."""
        check_holds(holds)
        with self._lock:
            for hold in holds:
                if hold.budget_id in self._built:
                    continue
                spent = to_nano(spent_by_counter.get(hold.counter, 0.0), "spent")
                self._counters[hold.counter] = _Counter(spent=spent)
            self._built.update(hold.budget_id for hold in holds)

    def is_built(self) -> bool:
        """See :meth:`BudgetStore.is_built`."""
        with self._lock:
            return bool(self._built)

    def alert_once(self, counter: str, at: float, ttl_s: int) -> bool:
        """See :meth:`BudgetStore.alert_once`."""
        with self._lock:
            first = (counter, at) not in self._alerted
            self._alerted.add((counter, at))
            return first

    def forget(self) -> None:
        """See :meth:`BudgetStore.forget`."""
        with self._lock:
            self._counters.clear()
            self._records.clear()
            self._built.clear()
            self._alerted.clear()
