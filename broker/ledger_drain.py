"""Moving handed-off ledger events from the queue (Redis) into the ledger (SQL).

One drainer at a time holds the queue's lock; each round writes the oldest ``batch`` events
in one transaction, then drops them from the queue. If the database is away, the events stay
queued (Redis keeps them, durably with AOF) and the next round tries again; nothing is lost
and, the writes being idempotent, nothing is written twice. An event that cannot be parsed
(written by a newer or broken version) is logged and skipped, never allowed to block the rest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from pydantic import ValidationError

from broker.stores.ledger import Ledger, LedgerEvent, LedgerQueue, parse_event
from broker.stores.sql.lazy import LazyLedger
from kernel.config import Config
from kernel.errors import InfrastructureError

log = logging.getLogger("lanes.ledger")

LOCK_TTL_S = 60.0
"""Longest one drain round may hold the lock (a dead drainer's lock expires after it)."""


def drain(queue: LedgerQueue, ledger: Ledger, *, batch: int = 500, rounds: int = 1000) -> int:
    """Move queued events into ``ledger`` until the queue is empty (or ``rounds`` batches);
    returns how many events were moved. 0 when another process is draining right now."""
    token = queue.lock(LOCK_TTL_S)
    if token is None:
        return 0
    moved = 0
    try:
        for _ in range(rounds):
            raws = queue.oldest(batch)
            if not raws:
                break
            ledger.write(_parse(raws))
            queue.drop_oldest(len(raws))
            moved += len(raws)
    finally:
        queue.unlock(token)
    return moved


def drain_all(
    queue: LedgerQueue, ledger: Ledger, *, batch: int = 500, timeout_s: float = 30.0
) -> int:
    """:func:`drain` until the queue is empty, waiting for another drainer to let go of the
    lock (at most ``timeout_s``); the number of events this call moved."""
    deadline = time.monotonic() + timeout_s
    moved = 0
    while True:
        moved += drain(queue, ledger, batch=batch)
        if queue.backlog() == 0 or time.monotonic() >= deadline:
            return moved
        time.sleep(0.1)


def _parse(raws: list[str]) -> list[LedgerEvent]:
    events = []
    for raw in raws:
        try:
            events.append(parse_event(raw))
        except (ValidationError, ValueError) as exc:
            log.error("skipping a ledger event that cannot be read (%s): %.200s", exc, raw)
    return events


class LedgerDrainer:
    """A process's drainer: opens the ledger on first use (so a database that is away does
    not stop a worker from starting) and keeps it open."""

    def __init__(
        self,
        config: Config,
        queue: LedgerQueue,
        *,
        after: Callable[[Ledger], object] | None = None,
    ) -> None:
        """``after(ledger)`` runs after each round (a worker restores budget limits)."""
        self._config = config
        self._queue = queue
        self._after = after
        self._ledger = LazyLedger(config)
        self._lock = threading.Lock()

    def drain(self) -> int:
        with self._lock:
            ledger = self._ledger.get()
            moved = drain(self._queue, ledger, batch=self._config.ledger.batch_size)
            if self._after is not None:
                self._after(ledger)
            return moved

    def close(self) -> None:
        self._ledger.close()

    def final_drain(self) -> None:
        """On shutdown: move what is queued now, if the database and Redis allow."""
        try:
            moved = self.drain()
        except InfrastructureError as exc:
            log.warning("ledger events left queued at shutdown: %s", exc)
            return
        if moved:
            log.info("moved %d ledger event(s) at shutdown", moved)


def start_drainer(
    drain_once: Callable[[], int], interval_s: float, stop: threading.Event
) -> threading.Thread:
    """Call ``drain_once`` every ``interval_s`` until ``stop`` is set (a daemon thread); an
    unreachable database or Redis is logged and tried again next round."""

    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                drain_once()
            except InfrastructureError as exc:
                log.warning("ledger drain postponed: %s", exc)

    thread = threading.Thread(target=loop, name="lanes-ledger", daemon=True)
    thread.start()
    return thread
