"""Checks of chat-completion messages beyond plain text, with OpenAI's rules and wording.

``content`` is a string or a non-empty list of parts: ``text`` for every role, also
``image_url`` (a ``data:`` URL or an http(s) URL, never fetched) for ``user``, also
``refusal`` for ``assistant``. An assistant message may carry ``tool_calls`` and then a
null ``content``; each call must be answered by a ``tool`` message (``tool_call_id``)
among the messages right after it, and a ``tool`` message must answer such a call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lanes.sim import media
from lanes.sim.validate import InvalidRequest

_PARTS = {
    "system": ("text",),
    "developer": ("text",),
    "user": ("text", "image_url"),
    "assistant": ("text", "refusal"),
    "tool": ("text",),
}


def check_message(message: Mapping[str, Any], where: str) -> None:
    role = str(message["role"])
    content = message.get("content")
    if role == "assistant":
        _check_tool_calls(message.get("tool_calls"), f"{where}.tool_calls")
        if content is None and message.get("tool_calls"):
            return
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise InvalidRequest(f"Missing parameter 'tool_call_id': {where}.tool_call_id")
    if isinstance(content, str):
        return
    if not isinstance(content, list) or not content:
        raise InvalidRequest(f"{where}.content: Input should be a string or a non-empty list")
    for index, part in enumerate(content):
        _check_part(part, f"{where}.content.{index}", _PARTS[role])


def _check_part(part: Any, where: str, allowed: Sequence[str]) -> None:
    if not isinstance(part, dict) or part.get("type") not in allowed:
        kinds = ", ".join(repr(kind) for kind in allowed)
        raise InvalidRequest(f"Invalid value for '{where}.type': expected one of {kinds}")
    kind = part["type"]
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str):
            raise InvalidRequest(f"Missing required parameter: '{where}.image_url.url'")
        if not url.startswith(("http://", "https://")):
            media.data_url(url, f"{where}.image_url.url")
    elif not isinstance(part.get(kind), str):
        raise InvalidRequest(f"Invalid type for '{where}.{kind}': expected a string")


def _check_tool_calls(calls: Any, where: str) -> None:
    if calls is None:
        return
    if not isinstance(calls, list):
        raise InvalidRequest(f"Invalid type for '{where}': expected an array")
    for index, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(function, dict)
            or not isinstance(call.get("id"), str)
            or call.get("type", "function") != "function"
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("arguments"), str)
        ):
            raise InvalidRequest(
                f"Invalid value for '{where}.{index}': expected "
                "{id, type: 'function', function: {name, arguments}}"
            )


def check_tool_pairs(messages: Sequence[Mapping[str, Any]]) -> None:
    """Tool messages answer the calls of the assistant message before them, every call."""
    open_ids: list[str] = []
    for index, message in enumerate(messages):
        if message["role"] == "tool":
            tool_id = str(message["tool_call_id"])
            if tool_id not in open_ids:
                raise InvalidRequest(
                    f"Invalid parameter: messages with role 'tool' must be a response to a "
                    f"preceeding message with 'tool_calls' (messages.[{index}])."
                )
            open_ids.remove(tool_id)
            continue
        _require_answered(open_ids)
        open_ids = [str(call["id"]) for call in message.get("tool_calls") or ()]
    if any(message["role"] == "tool" for message in messages[-1:]):
        _require_answered(open_ids)


def _require_answered(open_ids: Sequence[str]) -> None:
    if open_ids:
        raise InvalidRequest(
            "An assistant message with 'tool_calls' must be followed by tool messages "
            "responding to each 'tool_call_id'. The following tool_call_ids did not have "
            f"response messages: {', '.join(open_ids)}"
        )
