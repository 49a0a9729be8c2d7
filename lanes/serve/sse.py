"""A streaming job relayed to its HTTP caller as each API's server-sent events.

The text goes out as the worker relays it (:meth:`lanes.broker.handle.JobHandle.stream`);
what only the result holds follows it: the tool calls (whole, one delta each), the stop
reason and the usage. Anthropic's events: ``message_start``, ``ping``, per block
``content_block_start``/``delta``/``stop``, ``message_delta``, ``message_stop``; OpenAI's:
``chat.completion.chunk`` lines (the role first, then content or tool call deltas, the finish
reason, the usage when ``stream_options.include_usage``) and ``data: [DONE]``.

A retry or a fallback that starts the answer over after text was sent cannot take that text
back: the restart is said in the text itself (``[lanes: the answer restarts: ...]``), and the
new answer follows. A job that fails ends the stream with each API's error event.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from lanes.broker.handle import JobHandle
from lanes.broker.result import Result
from lanes.broker.stream import StreamEvent
from lanes.kernel.errors import LanesError
from lanes.serve import anthropic_in, openai_in
from lanes.serve.door import Door
from lanes.serve.errors import status_of


def restart_note(event: StreamEvent) -> str:
    return f"\n\n[lanes: the answer restarts: {event.reason}]\n\n"


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _data(data: dict[str, Any] | str) -> str:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n"


@dataclass
class _Relay:
    """What a relay has sent so far."""

    handle: JobHandle
    model: str = ""
    opened: bool = False
    texts: int = 0


async def anthropic_stream(door: Door, handle: JobHandle) -> AsyncIterator[str]:
    try:
        async for line in _anthropic_lines(door, handle):
            yield line
    except LanesError as exc:  # the stream broke off: Redis away, past serve.timeout_s
        yield _anthropic_error(exc)


def _anthropic_error(exc: LanesError) -> str:
    kind = "api_error" if status_of(exc) >= 500 else "invalid_request_error"
    return _event("error", {"type": "error", "error": {"type": kind, "message": str(exc)}})


async def _anthropic_lines(door: Door, handle: JobHandle) -> AsyncIterator[str]:
    relay = _Relay(handle)
    async for event in door.events(handle):
        if event.kind == "end":
            break
        if not relay.opened:
            yield _message_start(relay, event.model)
        text = event.text if event.kind == "text" else ""
        if event.kind == "restart" and relay.texts:
            text = restart_note(event)
        if text:
            if not relay.texts:
                yield _event("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "text", "text": ""}})  # fmt: skip
            relay.texts += 1
            delta = {"type": "text_delta", "text": text}
            yield _event("content_block_delta",
                         {"type": "content_block_delta", "index": 0, "delta": delta})  # fmt: skip
    result = await door.result(handle)
    if not relay.opened:
        yield _message_start(relay, result.model)
    for line in _anthropic_closing(relay, result):
        yield line


def _message_start(relay: _Relay, model: str) -> str:
    relay.opened = True
    relay.model = model or (relay.handle.decision.model if relay.handle.decision else "")
    usage = {"input_tokens": 0, "output_tokens": 0}
    message: dict[str, Any] = {
        "id": f"msg_{relay.handle.id}", "type": "message", "role": "assistant",
        "model": relay.model, "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": usage,
    }  # fmt: skip
    start = _event("message_start", {"type": "message_start", "message": message})
    return start + _event("ping", {"type": "ping"})


def _anthropic_closing(relay: _Relay, result: Result) -> list[str]:
    lines: list[str] = []
    index = 0
    if relay.texts:
        lines.append(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        index = 1
    for block in result.tool_calls:
        opened = {**block, "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        lines += [
            _event("content_block_start",
                   {"type": "content_block_start", "index": index, "content_block": opened}),
            _event("content_block_delta",
                   {"type": "content_block_delta", "index": index, "delta": delta}),
            _event("content_block_stop", {"type": "content_block_stop", "index": index}),
        ]  # fmt: skip
        index += 1
    stop: dict[str, Any] = {"stop_reason": result.stop_reason or "end_turn", "stop_sequence": None}
    lines.append(_event("message_delta", {"type": "message_delta", "delta": stop,
                                          "usage": anthropic_in.usage(result)}))  # fmt: skip
    lines.append(_event("message_stop", {"type": "message_stop"}))
    return lines


async def openai_stream(door: Door, handle: JobHandle, include_usage: bool) -> AsyncIterator[str]:
    try:
        async for line in _openai_lines(door, handle, include_usage):
            yield line
    except LanesError as exc:  # the stream broke off: Redis away, past serve.timeout_s
        yield _data({"error": {"message": str(exc), "type": "api_error", "code": None}})


async def _openai_lines(door: Door, handle: JobHandle, include_usage: bool) -> AsyncIterator[str]:
    relay = _Relay(handle)
    head = {"id": f"chatcmpl-{handle.id}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": ""}  # fmt: skip

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return _data({**head, "model": relay.model, "choices": [choice]})

    async for event in door.events(handle):
        if event.kind == "end":
            break
        if not relay.opened:
            relay.opened, relay.model = True, event.model
            yield chunk({"role": "assistant", "content": ""})
        text = event.text if event.kind == "text" else ""
        if event.kind == "restart" and relay.texts:
            text = restart_note(event)
        if text:
            relay.texts += 1
            yield chunk({"content": text})
    result = await door.result(handle)
    relay.model = result.model
    if not relay.opened:
        yield chunk({"role": "assistant", "content": ""})
    for index, block in enumerate(result.tool_calls):
        function = {"name": block["name"], "arguments": json.dumps(block["input"])}
        call = {"index": index, "id": block["id"], "type": "function", "function": function}
        yield chunk({"tool_calls": [call]})
    yield chunk({}, openai_in.finish_reason(result.stop_reason))
    if include_usage:
        yield _data({**head, "model": relay.model, "choices": [], "usage": openai_in.usage(result)})
    yield _data("[DONE]")
