"""Background work of a worker process: the sweep for lost messages (:mod:`broker.janitor`)."""

from __future__ import annotations

import logging
import threading

from broker.janitor import Janitor
from kernel.errors import InfrastructureError

log = logging.getLogger("lanes.janitor")


def start_janitor(janitor: Janitor, interval_s: float, stop: threading.Event) -> threading.Thread:
    """Sweep every ``interval_s`` until ``stop`` is set (a daemon thread)."""

    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                rescued = janitor.sweep()
            except InfrastructureError as exc:  # Redis away: try again next round
                log.warning("janitor sweep skipped: %s", exc)
                continue
            if rescued:
                log.warning("janitor re-sent %d lost message(s)", len(rescued))

    thread = threading.Thread(target=loop, name="lanes-janitor", daemon=True)
    thread.start()
    return thread
