"""Checks of Messages API content blocks, with the real API's rules and wording.

A user message may hold ``text``, ``image``, ``document`` and ``tool_result`` blocks (the
``tool_result`` ones first); an assistant message ``text`` and ``tool_use`` blocks. Each
``tool_result`` must answer a ``tool_use`` of the message just before it, and every
``tool_use`` followed by a message must be answered there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lanes.sim import media
from lanes.sim.validate import InvalidRequest

_ALLOWED = {
    "user": ("text", "image", "document", "tool_result"),
    "assistant": ("text", "tool_use"),
}
_KEYS = {
    "text": {"type", "text", "cache_control", "citations"},
    "image": {"type", "source", "cache_control", "transformations"},
    "document": {"type", "source", "cache_control", "title", "context", "citations"},
    "tool_use": {"type", "id", "name", "input", "cache_control", "caller"},
    "tool_result": {"type", "tool_use_id", "content", "is_error", "cache_control"},
}
_RESULT_KINDS = ("text", "image", "document")
"""What a ``tool_result``'s content blocks may be."""


def check_message(message: Mapping[str, Any], where: str) -> None:
    """One message's ``content``: a string or a non-empty list of blocks its role allows."""
    content = message.get("content")
    where = f"{where}.content"
    if isinstance(content, str):
        return
    if not isinstance(content, list) or not content:
        raise InvalidRequest(f"{where}: Input should be a string or a non-empty list of blocks")
    allowed = _ALLOWED[str(message["role"])]
    seen_other = False
    for index, block in enumerate(content):
        check_block(block, f"{where}.{index}", allowed)
        if block["type"] == "tool_result" and seen_other:
            raise InvalidRequest(
                f"{where}.{index}: tool_result blocks must come FIRST in the content array"
            )
        seen_other = seen_other or block["type"] != "tool_result"


def check_block(block: Any, where: str, allowed: Sequence[str]) -> None:
    if not isinstance(block, dict):
        raise InvalidRequest(f"{where}: Input should be an object")
    kind = str(block.get("type"))
    if kind not in allowed:
        tags = ", ".join(repr(tag) for tag in allowed)
        raise InvalidRequest(
            f"{where}.type: Input tag {block.get('type')!r} does not match any of {tags}"
        )
    for key in block:
        if key not in _KEYS[kind]:
            raise InvalidRequest(f"{where}.{key}: Extra inputs are not permitted")
    _CHECKS[kind](block, where)


def _check_text(block: Mapping[str, Any], where: str) -> None:
    if not isinstance(block.get("text"), str):
        raise InvalidRequest(f"{where}.text: Input should be a valid string")


def _check_image(block: Mapping[str, Any], where: str) -> None:
    source = _source(block, f"{where}.source", ("base64", "url"))
    if source["type"] == "url":
        _require_str(source, "url", f"{where}.source")
        return
    media_type = source.get("media_type")
    if media_type not in media.IMAGE_TYPES:
        types = ", ".join(repr(t) for t in media.IMAGE_TYPES)
        raise InvalidRequest(f"{where}.source.media_type: Input should be {types}")
    data = _require_str(source, "data", f"{where}.source")
    media.inline_image(media_type, data, f"{where}.source.data")


def _check_document(block: Mapping[str, Any], where: str) -> None:
    source = _source(block, f"{where}.source", ("base64", "text", "url"))
    kind = source["type"]
    if kind == "url":
        _require_str(source, "url", f"{where}.source")
        return
    expected = media.PDF_TYPE if kind == "base64" else "text/plain"
    if source.get("media_type") != expected:
        raise InvalidRequest(f"{where}.source.media_type: Input should be '{expected}'")
    data = _require_str(source, "data", f"{where}.source")
    if kind == "base64":
        media.inline_pdf(data, f"{where}.source.data")


def _check_tool_use(block: Mapping[str, Any], where: str) -> None:
    _require_str(block, "id", where)
    _require_str(block, "name", where)
    if not isinstance(block.get("input"), dict):
        raise InvalidRequest(f"{where}.input: Input should be a valid dictionary")


def _check_tool_result(block: Mapping[str, Any], where: str) -> None:
    _require_str(block, "tool_use_id", where)
    is_error = block.get("is_error")
    if is_error is not None and not isinstance(is_error, bool):
        raise InvalidRequest(f"{where}.is_error: Input should be a valid boolean")
    content = block.get("content")
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content: Input should be a string or a list of blocks")
    for index, inner in enumerate(content):
        check_block(inner, f"{where}.content.{index}", _RESULT_KINDS)


_CHECKS = {
    "text": _check_text,
    "image": _check_image,
    "document": _check_document,
    "tool_use": _check_tool_use,
    "tool_result": _check_tool_result,
}


def _source(block: Mapping[str, Any], where: str, kinds: Sequence[str]) -> Mapping[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise InvalidRequest(f"{where}: Field required")
    if source.get("type") not in kinds:
        tags = ", ".join(repr(kind) for kind in kinds)
        raise InvalidRequest(
            f"{where}.type: Input tag {source.get('type')!r} does not match {tags}"
        )
    return source


def _require_str(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{where}.{key}: Input should be a non-empty string")
    return value


def _ids(message: Mapping[str, Any], kind: str, key: str) -> list[str]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [str(block[key]) for block in content if block.get("type") == kind]


def check_tool_pairs(messages: Sequence[Mapping[str, Any]]) -> None:
    """Each ``tool_result`` answers a ``tool_use`` of the message before it; each
    ``tool_use`` with a message after it is answered in that message."""
    for index, message in enumerate(messages):
        results = _ids(message, "tool_result", "tool_use_id")
        before = _ids(messages[index - 1], "tool_use", "id") if index else []
        unexpected = [tool_id for tool_id in results if tool_id not in before]
        if unexpected:
            raise InvalidRequest(
                f"messages.{index}.content: unexpected `tool_use_id` found in `tool_result` "
                f"blocks: {', '.join(unexpected)}. Each `tool_result` block must have a "
                "corresponding `tool_use` block in the previous message."
            )
        uses = _ids(message, "tool_use", "id")
        if uses and index + 1 < len(messages):
            answered = _ids(messages[index + 1], "tool_result", "tool_use_id")
            missing = [tool_id for tool_id in uses if tool_id not in answered]
            if missing:
                raise InvalidRequest(
                    f"messages.{index}: `tool_use` ids were found without `tool_result` "
                    f"blocks immediately after: {', '.join(missing)}. Each `tool_use` block "
                    "must have a corresponding `tool_result` block in the next message."
                )
