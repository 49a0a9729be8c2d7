"""A job's answer as it is generated, in this process's memory."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from lanes.broker.stream import StreamEvent


class MemoryStreams:
    """Positions are ``1``, ``2``...; ``ttl_s`` is not enforced (tests are short)."""

    def __init__(self) -> None:
        self._events: dict[str, list[StreamEvent]] = {}
        self._changed = threading.Condition()

    def append(self, job_id: str, events: Sequence[StreamEvent], ttl_s: int) -> None:
        with self._changed:
            self._events.setdefault(job_id, []).extend(events)
            self._changed.notify_all()

    def read(self, job_id: str, after: str, block_s: float) -> list[tuple[str, StreamEvent]]:
        start = int(after)
        with self._changed:
            self._changed.wait_for(lambda: len(self._events.get(job_id, ())) > start, block_s)
            found = self._events.get(job_id, [])[start:]
        return [(str(start + i + 1), event) for i, event in enumerate(found)]
