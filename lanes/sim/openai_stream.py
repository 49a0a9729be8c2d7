"""A chat completion as the ``chat.completion.chunk`` events ``stream: true`` gets.

As OpenAI sends them: a first chunk with ``role: assistant`` (and ``content: ""``, or
``null`` when the answer calls tools); then the content a word at a time, or for each tool
call a chunk with its index, id and name followed by its ``arguments`` in pieces; a last
chunk with empty delta and the ``finish_reason``; with ``stream_options.include_usage`` a
chunk with no choices and the usage (every earlier chunk then says ``usage: null``); and
``data: [DONE]``. Each is one ``data:`` line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lanes.sim.anthropic_stream import json_pieces, text_pieces
from lanes.sim.wire import EventStream, sse

DONE = b"data: [DONE]\n\n"


class _Chunks:
    """Builds the chunks of one completion, which share its id, time and model."""

    def __init__(self, completion: Mapping[str, Any], with_usage: bool) -> None:
        self._base = {
            "id": completion["id"],
            "object": "chat.completion.chunk",
            "created": completion["created"],
            "model": completion["model"],
            "system_fingerprint": None,
        }
        self._with_usage = with_usage

    def choice(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        usage = {"usage": None} if self._with_usage else {}
        return sse({**self._base, "choices": [choice], **usage})

    def usage(self, usage: Mapping[str, Any]) -> bytes:
        return sse({**self._base, "choices": [], "usage": usage})


def _tool_deltas(chunks: _Chunks, calls: list[Mapping[str, Any]]) -> list[bytes]:
    deltas: list[bytes] = []
    for index, call in enumerate(calls):
        function = call["function"]
        opened = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": function["name"], "arguments": ""},
        }
        deltas.append(chunks.choice({"tool_calls": [opened]}))
        for piece in json_pieces(function["arguments"]):
            part = {"index": index, "function": {"arguments": piece}}
            deltas.append(chunks.choice({"tool_calls": [part]}))
    return deltas


def completion_stream(
    completion: Mapping[str, Any], with_usage: bool, first_s: float, last_s: float
) -> EventStream:
    """The chunks of ``completion`` (a whole unstreamed chat completion)."""
    chunks = _Chunks(completion, with_usage)
    choice = completion["choices"][0]
    message = choice["message"]
    calls = message.get("tool_calls") or []
    head = chunks.choice({"role": "assistant", "content": None if calls else ""})
    if calls:
        deltas = _tool_deltas(chunks, calls)
    else:
        deltas = [chunks.choice({"content": p}) for p in text_pieces(message["content"])]
    tail = chunks.choice({}, choice["finish_reason"])
    if with_usage:
        tail += chunks.usage(completion["usage"])
    return EventStream(head, tuple(deltas), tail + DONE, first_s, last_s)


def cut_stream(completion_id: str, created: int, model: str) -> EventStream:
    """A stream that starts and then breaks off: only the ``role`` chunk."""
    base = {"id": completion_id, "created": created, "model": model}
    head = _Chunks(base, with_usage=False).choice({"role": "assistant", "content": ""})
    return EventStream(head, cut=True)
