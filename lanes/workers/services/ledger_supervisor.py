"""Keeping a worker's ledger drainer running (:mod:`lanes.workers.services.ledger_drain`): a
drainer process
that died is replaced, logged and counted in Redis, at a bounded rate."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

from lanes.deployment import Deployment
from lanes.kernel.config import Config
from lanes.kernel.errors import LanesError
from lanes.workers.services import ledger_health
from lanes.workers.services.ledger_drain import DrainerProcess, start_drainer_process

log = logging.getLogger("lanes.ledger")

MAX_RESTARTS = 5
"""At most this many drainers started again within :data:`RESTART_WINDOW_S`..."""
RESTART_WINDOW_S = 600.0
"""...after which the next one waits until the oldest of them leaves the window."""
SUPERVISE_INTERVAL_S = 2.0
"""How often a worker looks at its drainer process."""


class DrainerSupervisor:
    """A worker's drainer, kept running: a drainer process that died (a crash, the OOM
    killer, ``kill``) is replaced, logged, and counted in Redis
    (:func:`lanes.workers.services.ledger_health.record_restart`), at most :data:`MAX_RESTARTS`
    times per
    :data:`RESTART_WINDOW_S`, so a drainer that dies at once every time does not spin.

    Each drainer process opens the deployment again from its config and Redis URL (it is a
    fresh interpreter); the supervisor records restarts on the worker's own connection."""

    def __init__(
        self,
        deployment: Deployment,
        *,
        start: Callable[[Config, str], DrainerProcess] = start_drainer_process,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._deployment = deployment
        self._config = deployment.config
        self._redis_url = deployment.redis_url
        self._start = start
        self._clock = clock
        self._restarts: deque[float] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._held_back = False
        self.current = start(self._config, self._redis_url)

    def check(self) -> bool:
        """Replace the drainer if it died and the restart budget allows; whether it did."""
        if self.current.process.is_alive() or self._stop.is_set():
            return False
        now = self._clock()
        while self._restarts and now - self._restarts[0] >= RESTART_WINDOW_S:
            self._restarts.popleft()
        dead = self.current.process
        if len(self._restarts) >= MAX_RESTARTS:
            if not self._held_back:
                wait_s = RESTART_WINDOW_S - (now - self._restarts[0])
                log.error(
                    "ledger drainer (pid %s) died again after %d restarts in %.0f s: next try"
                    " in %.0f s", dead.pid, MAX_RESTARTS, RESTART_WINDOW_S, wait_s,
                )  # fmt: skip
                self._held_back = True
            return False
        self._held_back = False
        self._restarts.append(now)
        self.current = self._start(self._config, self._redis_url)
        log.error("ledger drainer (pid %s) died with exit code %s; started another (pid %s)",
                  dead.pid, dead.exitcode, self.current.process.pid)  # fmt: skip
        self._record(f"{socket.gethostname()}:{dead.pid}", dead.exitcode)
        return True

    def _record(self, name: str, exitcode: int | None) -> None:
        deployment = self._deployment
        try:
            ledger_health.record_restart(deployment.redis, deployment.keys, name, exitcode)
        except LanesError as exc:
            log.warning("ledger drainer restart not recorded in Redis: %s", exc)

    def run(self, interval_s: float = SUPERVISE_INTERVAL_S) -> DrainerSupervisor:
        """Look at the drainer every ``interval_s`` from a daemon thread, until :meth:`close`."""

        def loop() -> None:
            while not self._stop.wait(interval_s):
                self.check()

        self._thread = threading.Thread(target=loop, name="lanes-ledger-supervisor", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop watching, then stop the drainer after a last drain."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.current.close(timeout_s)


def supervise_drainer(deployment: Deployment) -> DrainerSupervisor:
    """Start this worker's drainer process and keep it running (see
    :class:`DrainerSupervisor`)."""
    return DrainerSupervisor(deployment).run()
