"""What a reader of a streaming job's answer gets (:meth:`lanes.broker.handle.JobHandle.stream`):
the events its worker relays (:mod:`lanes.workers.streaming`), in order."""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

FIRST = "0"
"""The position before a stream's first event."""


class StreamEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["start", "restart", "text", "end"]
    text: str = ""
    """A ``text`` delta."""
    instance: str = ""
    model: str = ""
    """Where the call runs (``start``, ``restart``) or ran (``end``)."""
    reason: str = ""
    """Why a ``restart`` happened."""
    status: str = ""
    """``ok`` or ``failed`` (``end``)."""


class StreamReader(Protocol):
    def read(self, job_id: str, after: str, block_s: float) -> list[tuple[str, StreamEvent]]:
        """The events after position ``after`` (:data:`FIRST`: all), each with its position;
        waits up to ``block_s`` for one when there is none yet."""
        ...
