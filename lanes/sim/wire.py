"""What a handler sends back, built by the API modules without touching a socket."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

_EXTRA_REASONS = {529: "Overloaded"}
EVENT_STREAM = "text/event-stream; charset=utf-8"


@dataclass(frozen=True, slots=True)
class EventStream:
    """Server-sent events and their pacing: ``head`` at once, the content ``deltas`` from
    ``first_s`` to ``last_s`` after the start, evenly spaced, then ``tail``. ``cut``: hang up
    after the head, without the rest."""

    head: bytes
    deltas: tuple[bytes, ...] = ()
    tail: bytes = b""
    first_s: float = 0.0
    last_s: float = 0.0
    cut: bool = False

    def schedule(self) -> list[float]:
        """When each delta is due, in seconds from the start."""
        count = len(self.deltas)
        if count <= 1:
            return [self.first_s] * count
        step = (self.last_s - self.first_s) / (count - 1)
        return [self.first_s + index * step for index in range(count)]


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer. ``drop`` means close the connection without answering at all;
    ``stream`` answers with its events instead of ``body``, and ``finished`` (if set) is
    told once the stream is over whether it was sent whole."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    content_type: str = "application/json"
    stream: EventStream | None = None
    finished: Callable[[bool], None] | None = None

    @property
    def reason(self) -> str:
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return _EXTRA_REASONS.get(self.status, "Unknown")


DROP = Reply(status=0, drop=True)


def bearer_token(headers: Mapping[str, str]) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or ``""``."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Reply(status=status, body=body, headers=headers or {})


def retry_after_headers(retry_after_s: float) -> dict[str, str]:
    """``retry-after`` in whole seconds (rounded up) plus the exact ``retry-after-ms``."""
    whole_s = int(retry_after_s) + (0 if retry_after_s == int(retry_after_s) else 1)
    return {"retry-after": str(whole_s), "retry-after-ms": str(round(retry_after_s * 1000))}


def sse(payload: Any, event: str | None = None) -> bytes:
    """One server-sent event: ``event: <name>`` (when named) and a ``data:`` line."""
    data = json.dumps(payload, separators=(",", ":"))
    named = f"event: {event}\n" if event else ""
    return f"{named}data: {data}\n\n".encode()


def stream_reply(events: EventStream, headers: dict[str, str]) -> Reply:
    return Reply(200, headers=headers, content_type=EVENT_STREAM, stream=events)
