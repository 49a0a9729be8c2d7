"""The one connection of ``lanes mcp`` to its deployment, opened at the first call that needs
it, so the server starts (and lists its tools) while Redis is down."""

from __future__ import annotations

import threading
import time

from lanes.broker.embedded import require_answer
from lanes.client import Lanes
from lanes.kernel.config import Config
from lanes.kernel.errors import InfrastructureError

RETRY_OPEN_S = 2.0
"""After a failed connect, calls fail with its error this long before one tries again (many
parallel calls do not each wait out an unreachable Redis)."""


class Connection:
    """The server's one :class:`Lanes`, opened at the first call that needs it.

    A failed open is not kept: a call :data:`RETRY_OPEN_S` later tries again, so a server
    started before Redis recovers by itself. Thread-safe: tools run in worker threads.
    """

    def __init__(self, config: Config) -> None:
        self._config = config
        self._lanes: Lanes | None = None
        self._lock = threading.Lock()
        self._failed: tuple[float, str] | None = None
        """(time.monotonic() until which calls fail at once, the error)"""

    def get(self) -> Lanes:
        with self._lock:
            if self._lanes is None:
                if self._failed is not None and time.monotonic() < self._failed[0]:
                    raise InfrastructureError(self._failed[1])
                try:
                    self._lanes = self._open()
                except InfrastructureError as exc:
                    self._failed = (time.monotonic() + RETRY_OPEN_S, str(exc))
                    raise
            return self._lanes

    def _open(self) -> Lanes:
        """Connect and PING, so an unreachable Redis is one clear InfrastructureError."""
        lanes = Lanes.connect(self._config)
        try:
            require_answer(lanes.redis_url, master=lanes.config.redis_sentinel_master)
        except InfrastructureError:
            lanes.close()
            raise
        return lanes

    def close(self) -> None:
        with self._lock:
            lanes, self._lanes = self._lanes, None
        if lanes is not None:
            lanes.close()
