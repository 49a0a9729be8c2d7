"""The ledger opened on first use, for a long-lived process (a worker's drainer, a
dispatcher's learning and budget rebuilds): a database that is away must not stop it from
starting, and is tried again on the next use."""

from __future__ import annotations

import threading

from lanes.kernel.config import Config
from lanes.stores.sql import SqlLedger, open_ledger


class LazyLedger:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._ledger: SqlLedger | None = None
        self._lock = threading.Lock()

    def get(self) -> SqlLedger:
        """The open ledger (InfrastructureError while the database cannot be opened)."""
        with self._lock:
            if self._ledger is None:
                self._ledger = open_ledger(self._config)
            return self._ledger

    def close(self) -> None:
        with self._lock:
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None
