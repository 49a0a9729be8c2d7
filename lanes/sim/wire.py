"""What a handler sends back, built by the API modules without touching a socket."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

_EXTRA_REASONS = {529: "Overloaded"}


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer. ``drop`` means close the connection without answering at all."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    content_type: str = "application/json"

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
