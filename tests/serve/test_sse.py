"""The relay of a stream to HTTP callers, on a door whose events and result are given: the
order of each API's events, a restart said in the text, tool calls at the end, and a job that
fails (or a stream that breaks off) ending with the API's error event."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lanes.broker.result import Result
from lanes.broker.stream import StreamEvent
from lanes.kernel.errors import JobFailed, JobTimeout, LanesError
from lanes.serve.sse import anthropic_stream, openai_stream

CALL = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}}


class GivenDoor:
    def __init__(self, events: list[StreamEvent], result: Result | LanesError,
                 broken: LanesError | None = None) -> None:  # fmt: skip
        self._events, self._result, self._broken = events, result, broken

    async def events(self, handle: Any) -> AsyncIterator[StreamEvent]:
        for event in self._events:
            yield event
        if self._broken is not None:
            raise self._broken

    async def result(self, handle: Any) -> Result:
        if isinstance(self._result, LanesError):
            raise self._result
        return self._result


class Handle:
    id = "job-1"
    decision = None


def result(**kw: Any) -> Result:
    base = {"job_id": "job-1", "status": "ok", "instance": "claude2", "model": "m", "step": 1,
            "attempt": 0, "text": "Hello", "stop_reason": "tool_use", "input_tokens": 7,
            "output_tokens": 3, "content": [{"type": "text", "text": "Hello"}, CALL]}  # fmt: skip
    return Result.model_validate({**base, **kw})


def lines(stream: AsyncIterator[str]) -> list[str]:
    async def collect() -> list[str]:
        return [line async for line in stream]

    return asyncio.run(collect())


def anthropic_events(door: GivenDoor) -> list[dict[str, Any]]:
    out = "".join(lines(anthropic_stream(door, Handle())))  # type: ignore[arg-type]
    return [json.loads(line.removeprefix("data: ")) for line in out.splitlines()
            if line.startswith("data: ")]  # fmt: skip


RESTARTED = [
    StreamEvent(kind="start", instance="claude1", model="m"),
    StreamEvent(kind="text", text="Hel"),
    StreamEvent(kind="restart", instance="claude2", model="m", reason="fell back: 529"),
    StreamEvent(kind="text", text="Hello"),
    StreamEvent(kind="end", status="ok"),
]


def test_anthropic_events_carry_the_text_the_restart_and_then_the_tool_call() -> None:
    events = anthropic_events(GivenDoor(RESTARTED, result()))
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["message_start", "ping", "content_block_start"]
    assert kinds[-2:] == ["message_delta", "message_stop"]
    texts = [e["delta"]["text"] for e in events if e["type"] == "content_block_delta"
             and e["delta"]["type"] == "text_delta"]  # fmt: skip
    assert texts[0] == "Hel" and "the answer restarts: fell back: 529" in texts[1]
    assert texts[2] == "Hello"
    tool = [e for e in events if e["type"] == "content_block_start" and e["index"] == 1]
    assert tool[0]["content_block"]["name"] == "lookup"
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-2]["usage"]["output_tokens"] == 3


@pytest.mark.parametrize(
    ("door", "words"),
    [
        (GivenDoor(RESTARTED, JobFailed("job job-1 failed: 500 on every step")), "every step"),
        (GivenDoor(RESTARTED[:2], result(), broken=JobTimeout("not finished after 600s")),
         "not finished"),
    ],
)  # fmt: skip
def test_a_failure_ends_each_stream_with_its_error_event(door: GivenDoor, words: str) -> None:
    last = anthropic_events(door)[-1]
    assert last["type"] == "error" and last["error"]["type"] == "api_error"
    assert words in last["error"]["message"]
    out = lines(openai_stream(door, Handle(), include_usage=True))  # type: ignore[arg-type]
    assert words in json.loads(out[-1].removeprefix("data: "))["error"]["message"]


def test_openai_chunks_carry_text_then_tool_calls_finish_usage_and_done() -> None:
    out = lines(openai_stream(GivenDoor(RESTARTED, result()), Handle(), include_usage=True))  # type: ignore[arg-type]
    assert out[-1] == "data: [DONE]\n\n"
    chunks = [json.loads(line.removeprefix("data: ")) for line in out[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    calls = [c for c in chunks if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
    assert calls[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "lookup"
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] == 3 and chunks[-1]["choices"] == []
