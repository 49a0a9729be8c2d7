"""Moving handed-off ledger events from the queue (Redis) into the ledger (SQL).

One drainer at a time holds the queue's lock; each round writes the oldest ``batch`` events
in one transaction, then drops them from the queue. If the database is away, the events stay
queued (Redis keeps them, durably with AOF) and the next round tries again; nothing is lost
and, the writes being idempotent, nothing is written twice. An event that cannot be parsed
(written by a newer or broken version) is logged and skipped, never allowed to block the rest.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pydantic import ValidationError

from lanes.deployment import Deployment, open_deployment
from lanes.kernel.config import Config
from lanes.kernel.errors import LanesError
from lanes.layers.budgets.worker import restore_overrides
from lanes.stores.ledger import Ledger, LedgerEvent, LedgerQueue, parse_event
from lanes.stores.sql.lazy import LazyLedger
from lanes.workers.services import ledger_health

log = logging.getLogger("lanes.ledger")


class Stoppable(Protocol):
    """A threading or multiprocessing event."""

    def wait(self, timeout: float | None = None) -> bool: ...

    def set(self) -> None: ...


LOCK_TTL_S = 60.0
"""Longest one drain round may hold the lock (a dead drainer's lock expires after it)."""


def drain(
    queue: LedgerQueue,
    ledger: Ledger,
    *,
    batch: int = 500,
    rounds: int = 1000,
    on_batch: Callable[[], object] | None = None,
) -> int:
    """Move queued events into ``ledger``, ``batch`` at a time, until a batch comes out short
    (the queue was caught up; events arriving meanwhile wait for the next call, so that under
    a steady flow each call writes one large batch, not a stream of small ones) or ``rounds``
    batches were written; returns how many events were moved. 0 when another process is
    draining right now. ``on_batch()`` runs after each batch written (a heartbeat)."""
    token = queue.lock(LOCK_TTL_S)
    if token is None:
        return 0
    moved = 0
    try:
        for _ in range(rounds):
            raws = queue.oldest(batch)
            if raws:
                ledger.write(_parse(raws))
                queue.drop_oldest(len(raws))
                moved += len(raws)
                if on_batch is not None:
                    on_batch()
            if len(raws) < batch:
                break  # caught up: what arrives meanwhile waits for the next round's batch
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
        on_batch: Callable[[], object] | None = None,
        ledger: LazyLedger | None = None,
    ) -> None:
        """``after(ledger)`` runs after each round (a worker restores budget limits),
        ``on_batch()`` after each batch written. ``ledger``: where the events go (default:
        the config's, opened on first use)."""
        self._config = config
        self._queue = queue
        self._after = after
        self._on_batch = on_batch
        self._ledger = ledger if ledger is not None else LazyLedger(config)
        self._lock = threading.Lock()

    def drain(self) -> int:
        with self._lock:
            ledger = self._ledger.get()
            moved = drain(
                self._queue, ledger, batch=self._config.ledger.batch_size, on_batch=self._on_batch
            )
            if self._after is not None:
                self._after(ledger)
            return moved

    def close(self) -> None:
        self._ledger.close()

    def final_drain(self) -> None:
        """On shutdown: move what is queued now, if the database and Redis allow."""
        try:
            moved = self.drain()
        except LanesError as exc:
            log.warning("ledger events left queued at shutdown: %s", exc)
            return
        if moved:
            log.info("moved %d ledger event(s) at shutdown", moved)


def drain_every(
    drain_once: Callable[[], int],
    interval_s: float,
    stop: Stoppable,
    parent_pid: int | None = None,
    report: Callable[[str | None], object] | None = None,
) -> None:
    """Call ``drain_once`` every ``interval_s`` until ``stop`` is set (or, given
    ``parent_pid``, until that process is gone); a round that fails with one of lanes' errors
    (a database or Redis away, a bad ``database_url``) is logged and tried again next round.
    ``report(error)`` hears how each round went (None: it worked)."""
    while not stop.wait(interval_s):
        if parent_pid is not None and os.getppid() != parent_pid:
            log.warning("the worker that started this drainer is gone; stopping")
            return
        try:
            drain_once()
        except LanesError as exc:
            log.warning("ledger drain postponed: %s", exc)
            _report(report, str(exc))
        else:
            _report(report, None)


def _report(report: Callable[[str | None], object] | None, error: str | None) -> None:
    if report is None:
        return
    try:
        report(error)
    except LanesError as exc:  # Redis away: the next round's heartbeat says it all again
        log.warning("ledger drainer heartbeat not written: %s", exc)


def drainer_process(config: Config, redis_url: str, stop: Stoppable, parent_pid: int) -> None:
    """The body of a worker's drainer process (spawned by :func:`start_drainer_process`).

    A process of its own, not a thread of the worker: parsing and writing batches is CPU work,
    and in the worker it would hold the GIL against the threads making provider calls. It
    also puts back budget limits set from the CLI after a Redis restart
    (:func:`lanes.layers.budgets.worker.restore_overrides`), beats after every round and batch
    (:mod:`lanes.workers.services.ledger_health`), and drains what is left when stopped. An error
    that is none of lanes' own is recorded in Redis and ends the process: its worker starts another
    (:class:`DrainerSupervisor`)."""
    logging.basicConfig(
        level=logging.INFO, format="[%(asctime)s: %(levelname)s/ledger] %(message)s"
    )
    deployment = open_deployment(config, redis_url)
    stores = deployment.stores
    name = ledger_health.drainer_name()
    stale_s = ledger_health.stale_after_s(config.ledger.flush_interval_s)
    reported: set[str] = set()

    def beat(error: str | None = None) -> None:
        ledger_health.beat(deployment.redis, deployment.keys, name, stale_s, error)

    drainer = LedgerDrainer(
        config,
        stores.ledger,
        after=lambda ledger: restore_overrides(stores.budget, ledger, reported),
        on_batch=lambda: _report(beat, None),
        ledger=deployment.ledger,
    )
    try:
        _report(beat, None)
        _drain_until_stopped(drainer, config, stop, parent_pid, beat)
        _leave(deployment, name)
    finally:
        drainer.close()
        deployment.close()


def _leave(deployment: Deployment, name: str) -> None:
    try:
        ledger_health.leave(deployment.redis, deployment.keys, name)
    except LanesError as exc:
        log.warning("ledger drainer left without saying so: %s", exc)


def _drain_until_stopped(
    drainer: LedgerDrainer,
    config: Config,
    stop: Stoppable,
    parent_pid: int,
    beat: Callable[[str | None], None],
) -> None:
    try:
        drain_every(drainer.drain, config.ledger.flush_interval_s, stop, parent_pid, beat)
        drainer.final_drain()
    except Exception as exc:
        # Not one of lanes' errors: a bug. Say so where doctor and status look, then die
        # with the traceback in the log; the worker starts another drainer.
        log.exception("ledger drainer stopped by an unexpected error")
        _report(beat, f"drainer died: {type(exc).__name__}: {exc}")
        raise


@dataclass
class DrainerProcess:
    """A running drainer process and the event that stops it."""

    process: multiprocessing.process.BaseProcess
    stop: Stoppable

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop it after a last drain (at most ``timeout_s``)."""
        self.stop.set()
        self.process.join(timeout_s)
        if self.process.is_alive():
            log.warning("ledger drainer did not stop in %.0fs; terminating it", timeout_s)
            self.process.terminate()


def start_drainer_process(config: Config, redis_url: str) -> DrainerProcess:
    """Spawn this process's ledger drainer (a fresh interpreter: nothing of the worker's
    threads or connections is inherited)."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    process = context.Process(
        target=drainer_process,
        args=(config, redis_url, stop, os.getpid()),
        name="lanes-ledger",
        daemon=True,
    )
    process.start()
    return DrainerProcess(process, stop)
