"""Request-body checks shared by both APIs; a failure raises :class:`InvalidRequest`
whose text follows the real APIs' ``field: problem`` style."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any


class InvalidRequest(ValueError):
    """The body is malformed; the message is meant for the caller."""


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidRequest("request body must be a JSON object")
    return payload


def require_str(payload: Mapping[str, Any], key: str) -> str:
    if key not in payload:
        raise InvalidRequest(f"{key}: Field required")
    value = payload[key]
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{key}: Input should be a non-empty string")
    return value


def optional_int(payload: Mapping[str, Any], key: str, minimum: int = 1) -> int | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest(f"{key}: Input should be a valid integer")
    if value < minimum:
        raise InvalidRequest(f"{key}: Input should be greater than or equal to {minimum}")
    return value


def optional_number(payload: Mapping[str, Any], key: str, low: float, high: float) -> None:
    value = payload.get(key)
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidRequest(f"{key}: Input should be a valid number")
    if not low <= value <= high:
        raise InvalidRequest(f"{key}: Input should be between {low:g} and {high:g}")


def check_content(content: Any, where: str) -> None:
    """A message body: a string, or a non-empty list of ``{"type": "text", "text": str}``."""
    if isinstance(content, str):
        return
    if not isinstance(content, list) or not content:
        raise InvalidRequest(f"{where}: Input should be a string or a non-empty list of blocks")
    for index, block in enumerate(content):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise InvalidRequest(f"{where}.{index}: only text blocks are simulated")
        if not isinstance(block.get("text"), str):
            raise InvalidRequest(f"{where}.{index}.text: Input should be a valid string")


MessageCheck = Callable[[dict[str, Any], str], None]
"""Checks one message (its role already checked) at ``messages.<index>``."""


def _text_message(message: dict[str, Any], where: str) -> None:
    check_content(message.get("content"), f"{where}.content")


def check_messages(
    value: Any, roles: Sequence[str], check: MessageCheck = _text_message
) -> list[dict[str, Any]]:
    """A non-empty list of ``{"role", "content"}`` with a role from ``roles``, each
    message passing ``check`` (by default: text content only)."""
    if value is None:
        raise InvalidRequest("messages: Field required")
    if not isinstance(value, list) or not value:
        raise InvalidRequest("messages: Input should be a non-empty list")
    for index, message in enumerate(value):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages.{index}: Input should be an object")
        if message.get("role") not in roles:
            allowed = ", ".join(repr(role) for role in roles)
            raise InvalidRequest(f"messages.{index}.role: Input should be one of {allowed}")
        check(message, f"messages.{index}")
    return value


def stream_flag(payload: Mapping[str, Any]) -> bool:
    """Whether the request asks for a stream (``stream`` must be a boolean)."""
    value = payload.get("stream")
    if value is not None and not isinstance(value, bool):
        raise InvalidRequest("stream: Input should be a valid boolean")
    return value is True


def reject_stream(payload: Mapping[str, Any]) -> None:
    """Batch requests cannot stream, in either API."""
    if stream_flag(payload):
        raise InvalidRequest("stream: streaming is not supported in batch requests")
