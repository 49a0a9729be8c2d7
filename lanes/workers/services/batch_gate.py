"""Interactive before batch on RabbitMQ: a worker stops taking a lane's batch queue while the
lane's interactive queue has messages waiting, and takes it again once that queue is empty.

Quorum queues have no message priorities, so a batch job's message waits in ``<lane>.batch``
(:mod:`lanes.broker.amqp`) and the worker consumes both queues. Every ``interval_s`` the gate
reads how many interactive messages wait (a passive declare on one connection of its own) and
tells its own worker, through Celery's control channel, to cancel or resume its consumer of the
batch queue; it only speaks when that changes. Batch messages the worker already holds still
run, so an interactive message waits at most one interval plus the calls already started (on
Redis, kombu's priority lists give the same order without a gate).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from celery import Celery

from lanes.broker.amqp import batch_queue, depths_on
from lanes.kernel.errors import InfrastructureError

log = logging.getLogger("lanes.batch_gate")

INTERVAL_S = 0.5

Depths = Callable[[list[str]], dict[str, int]]


class BatchGate:
    def __init__(self, app: Celery, worker: str, lanes: list[str], depths: Depths) -> None:
        self._app, self._worker, self._lanes, self._depths = app, worker, lanes, depths
        self.closed: set[str] = set()
        """Lanes whose batch queue this worker does not take now."""

    def step(self) -> None:
        """Read the interactive queues once; close or open each lane's batch queue."""
        waiting = self._depths(self._lanes)
        for lane in self._lanes:
            busy = waiting.get(lane, 0) > 0
            if busy and lane not in self.closed:
                self._app.control.cancel_consumer(batch_queue(lane), destination=[self._worker])
                self.closed.add(lane)
            elif not busy and lane in self.closed:
                self._app.control.add_consumer(batch_queue(lane), destination=[self._worker])
                self.closed.discard(lane)


def start_batch_gate(
    app: Celery, worker: str, lanes: list[str], stop: threading.Event
) -> threading.Thread:
    """Run a :class:`BatchGate` for ``worker`` every :data:`INTERVAL_S` until ``stop``."""
    connection = app.connection_for_read()
    gate = BatchGate(app, worker, lanes, lambda names: depths_on(connection, names))

    def loop() -> None:
        while not stop.wait(INTERVAL_S):
            try:
                gate.step()
            except InfrastructureError as exc:
                log.warning("batch gate: %s", exc)
        connection.release()

    thread = threading.Thread(target=loop, name="lanes-batch-gate", daemon=True)
    thread.start()
    return thread
