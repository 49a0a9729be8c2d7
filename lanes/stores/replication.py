"""Whether a write has reached a replica before anyone acts on it.

Behind Sentinel a failover promotes a replica that may lack the primary's last writes
(replication is asynchronous). Two moments must not be undone that way: a submit that
returned (the caller holds a handle on a job that would vanish) and a result that a caller
may read (a job run again would be answered twice). At both, lanes settles: it returns once a
replica holds every write made so far, or once the wait runs out (then it carries on and warns).
"""

from __future__ import annotations

from typing import Protocol


class Replication(Protocol):
    def settle(self) -> None:
        """Return once a replica holds every write made so far (or the wait ran out)."""


class Unreplicated:
    """No replica to wait for (one Redis, or memory)."""

    def settle(self) -> None:
        return None
