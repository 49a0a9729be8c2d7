"""A job's answer as it is generated: the port.

A job submitted with ``stream: true`` has its calls relayed, delta by delta, to a stream of
its own that lives as long as its result (``result_ttl_s``). Each call that starts writes
``start`` (the first) or ``restart`` (a retry or a fallback: what came before is void, and
``reason`` says why), then its ``text`` deltas; ``end`` follows the recorded result. A reader
that comes late reads from the start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from lanes.broker.stream import StreamEvent


class StreamStore(Protocol):
    def append(self, job_id: str, events: Sequence[StreamEvent], ttl_s: int) -> None:
        """Add ``events`` to the job's stream, which then lives ``ttl_s`` seconds more."""

    def read(self, job_id: str, after: str, block_s: float) -> list[tuple[str, StreamEvent]]:
        """The events after position ``after`` (:data:`FIRST`: all), each with its position;
        waits up to ``block_s`` for one when there is none yet."""
