"""A Messages API answer as the server-sent events ``stream: true`` gets.

The events are those the API sends, in its order: ``message_start`` (the message with
no content, no stop reason and the input usage), then for each content block
``content_block_start``, its deltas (``text_delta`` a word at a time, ``input_json_delta``
:data:`JSON_PIECE_CHARS` characters at a time) and ``content_block_stop``, with one
``ping`` after the first block starts; then ``message_delta`` (stop reason and the
cumulative usage) and ``message_stop``. Put together they make exactly the message the
same call answers unstreamed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from lanes.sim.wire import EventStream, sse

JSON_PIECE_CHARS = 16
_WORD = re.compile(r"\s*\S+\s*")


def _event(payload: dict[str, Any]) -> bytes:
    return sse(payload, str(payload["type"]))


def text_pieces(text: str) -> list[str]:
    """``text`` a word at a time (with its surrounding spaces); joined, ``text`` again."""
    pieces = _WORD.findall(text)
    rest = text[sum(len(piece) for piece in pieces) :]
    return [*pieces, rest] if rest else pieces


def json_pieces(text: str) -> list[str]:
    return [text[at : at + JSON_PIECE_CHARS] for at in range(0, len(text), JSON_PIECE_CHARS)]


def _block_events(index: int, block: Mapping[str, Any]) -> tuple[bytes, list[bytes]]:
    """The ``content_block_start`` of a block and its delta events."""
    start: dict[str, Any]
    if block["type"] == "text":
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in text_pieces(block["text"])]
    else:
        start = {key: value for key, value in block.items() if key != "arguments"}
        start["input"] = {}
        arguments = str(block["arguments"])
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in json_pieces(arguments)]
    opened = _event({"type": "content_block_start", "index": index, "content_block": start})
    events = [_event({"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
    return opened, events


def _content(blocks: list[Mapping[str, Any]]) -> Iterator[bytes]:
    """Each delta with the block boundaries before it; a block without deltas rides on the
    next one."""
    pending = b""
    for index, block in enumerate(blocks):
        opened, deltas = _block_events(index, block)
        pending += opened + (_event({"type": "ping"}) if index == 0 else b"")
        for delta in deltas:
            yield pending + delta
            pending = b""
        pending += _event({"type": "content_block_stop", "index": index})
    if pending:
        yield pending


def message_stream(
    message: Mapping[str, Any], arguments: list[str], first_s: float, last_s: float
) -> EventStream:
    """The events of ``message`` (a whole unstreamed message); ``arguments`` are the JSON
    texts of its ``tool_use`` blocks' inputs, in order."""
    usage = message["usage"]
    start_usage = {**usage, "output_tokens": min(1, usage["output_tokens"])}
    started = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    head = _event({"type": "message_start", "message": {**started, "usage": start_usage}})
    texts = iter(arguments)
    blocks = [
        {**block, "arguments": next(texts)} if block["type"] == "tool_use" else block
        for block in message["content"]
    ]
    pieces = list(_content(blocks))
    # The last piece is the final content_block_stop: it goes with the tail.
    tail_stop = pieces.pop() if blocks else b""
    delta_usage = {
        key: usage[key]
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    } | {"output_tokens": usage["output_tokens"]}
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    tail = (
        tail_stop
        + _event({"type": "message_delta", "delta": stop, "usage": delta_usage})
        + _event({"type": "message_stop"})
    )
    return EventStream(head, tuple(pieces), tail, first_s, last_s)


def cut_stream(model: str, message_id: str, input_tokens: int) -> EventStream:
    """A stream that starts and then breaks off: only ``message_start`` and a ``ping``."""
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }
    head = _event({"type": "message_start", "message": message}) + _event({"type": "ping"})
    return EventStream(head, cut=True)
