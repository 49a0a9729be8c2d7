"""Streamed answers (``stream: true``) through the official SDKs: events, pacing, errors
before the stream, and the same usage and bill as an unstreamed call."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from lanes.sim import BILLED, Fault, Profile, Simulator, expected_reply

from .conftest import HAIKU, LLAMA, SONNET

HELLO: list[Any] = [{"role": "user", "content": "Tell me about streams."}]
HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


@pytest.fixture
def gpt(sim: Simulator) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        api_key="k", base_url=sim.base_url("local") + "/v1", max_retries=0
    ) as client:
        yield client


def _billed(sim: Simulator, instance: str) -> dict[str, int]:
    return {k: v for k, v in sim.stats()[instance].items() if k.startswith(BILLED)}


def test_messages_stream_helper_builds_the_unstreamed_message(
    claude: anthropic.Anthropic,
) -> None:
    plain = claude.messages.create(model=SONNET, max_tokens=200, messages=HELLO)
    with claude.messages.stream(model=SONNET, max_tokens=200, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == expected_reply(SONNET, HELLO, None, 200)
    assert final.content[0].type == "text"
    assert final.content[0].text == text
    assert final.stop_reason == plain.stop_reason == "end_turn"
    assert final.usage == plain.usage
    assert final.id.startswith("msg_")


def test_messages_raw_events_come_in_the_api_order(claude: anthropic.Anthropic) -> None:
    events = list(claude.messages.create(model=SONNET, max_tokens=200, messages=HELLO, stream=True))
    kinds = [event.type for event in events]
    # The SDK skips the ping that follows the first content_block_start.
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    start = events[0]
    assert start.type == "message_start"
    assert start.message.content == []
    assert start.message.stop_reason is None
    assert start.message.usage.input_tokens > 0
    deltas = [e.delta for e in events if e.type == "content_block_delta"]
    assert "".join(d.text for d in deltas if d.type == "text_delta") == expected_reply(
        SONNET, HELLO, None, 200
    )
    delta = events[-2]
    assert delta.type == "message_delta"
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens > 1


def test_messages_stream_is_sse_with_headers(http: httpx.Client) -> None:
    body = {"model": SONNET, "max_tokens": 50, "messages": HELLO, "stream": True}
    with http.stream("POST", "/claude1/v1/messages", json=body, headers=HEADERS) as response:
        raw = response.read().decode()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["request-id"].startswith("req_")
    assert "anthropic-ratelimit-requests-remaining" in response.headers
    assert raw.startswith("event: message_start\ndata: {")
    assert '\n\nevent: ping\ndata: {"type":"ping"}\n\n' in raw
    assert raw.endswith('event: message_stop\ndata: {"type":"message_stop"}\n\n')
    # Keep-alive: the same connection serves the next call.
    again = http.post("/claude1/v1/messages", json={**body, "stream": False}, headers=HEADERS)
    assert again.status_code == 200


def test_messages_truncated_stream_says_max_tokens(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model=SONNET, max_tokens=5, messages=HELLO) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens"
    assert final.usage.output_tokens == 5


def test_openai_stream_chunks_and_usage(gpt: openai.OpenAI) -> None:
    plain = gpt.chat.completions.create(model=LLAMA, messages=HELLO)
    chunks = list(
        gpt.chat.completions.create(
            model=LLAMA, messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    finishing = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishing[-1] == "stop"
    assert set(finishing[:-1]) == {None}
    assert chunks[-1].choices == []
    assert chunks[-1].usage == plain.usage


def test_openai_stream_without_usage_option_has_no_usage(gpt: openai.OpenAI) -> None:
    chunks = list(gpt.chat.completions.create(model=LLAMA, messages=HELLO, stream=True))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_openai_stream_helper_final_completion(gpt: openai.OpenAI) -> None:
    with gpt.chat.completions.stream(model=LLAMA, messages=HELLO) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.content == expected_reply(LLAMA, HELLO, None, 10**6)


def test_streamed_and_unstreamed_calls_bill_the_same(
    sim: Simulator, claude: anthropic.Anthropic, gpt: openai.OpenAI
) -> None:
    claude.messages.create(model=HAIKU, max_tokens=100, messages=HELLO)
    gpt.chat.completions.create(model=LLAMA, messages=HELLO)
    plain = (_billed(sim, "claude1"), _billed(sim, "local"))
    sim.reset_stats()
    with claude.messages.stream(model=HAIKU, max_tokens=100, messages=HELLO) as stream:
        stream.until_done()
    list(gpt.chat.completions.create(model=LLAMA, messages=HELLO, stream=True))
    assert (_billed(sim, "claude1"), _billed(sim, "local")) == plain
    stats = sim.stats()["claude1"]
    assert (stats["ok"], stats["in_flight"], stats["status_200"]) == (1, 0, 1)


def test_stream_rate_limited_before_it_starts(sim: Simulator, claude: anthropic.Anthropic) -> None:
    sim.set_fault("claude1", Fault(kind="429", retry_after_s=2))
    with (
        pytest.raises(anthropic.RateLimitError) as caught,
        claude.messages.stream(model=SONNET, max_tokens=10, messages=HELLO) as stream,
    ):
        stream.until_done()
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.response.headers["content-type"] == "application/json"


def test_stream_refused_by_the_limits_raises_rate_limit_error(sim: Simulator) -> None:
    sim.set_profile("tight", Profile(requests_per_min=1))
    with anthropic.Anthropic(api_key="k", base_url=sim.base_url("tight"), max_retries=0) as client:
        client.messages.create(model=SONNET, max_tokens=10, messages=HELLO)
        with pytest.raises(anthropic.RateLimitError):
            client.messages.create(model=SONNET, max_tokens=10, messages=HELLO, stream=True)
    base_url = sim.base_url("tight") + "/v1"
    with (
        openai.OpenAI(api_key="k", base_url=base_url, max_retries=0) as oa,
        pytest.raises(openai.RateLimitError),
    ):
        oa.chat.completions.create(model=SONNET, messages=HELLO, stream=True)


def test_stream_invalid_request_is_a_json_400(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        claude.messages.create(model=SONNET, max_tokens=0, messages=HELLO, stream=True)


def test_stream_drop_fault_breaks_off_mid_stream(
    sim: Simulator, claude: anthropic.Anthropic
) -> None:
    sim.set_fault("claude1", Fault(kind="drop", count=1))
    with pytest.raises((httpx.HTTPError, anthropic.APIError)):
        list(claude.messages.create(model=SONNET, max_tokens=10, messages=HELLO, stream=True))
    assert sim.stats()["claude1"]["dropped"] == 1
    assert claude.messages.create(model=SONNET, max_tokens=10, messages=HELLO).content


def test_stream_latency_is_paced(sim: Simulator) -> None:
    sim.set_profile("slow", Profile(latency_s=0.6, first_token_fraction=0.5))
    with anthropic.Anthropic(api_key="k", base_url=sim.base_url("slow"), max_retries=0) as client:
        start = time.monotonic()
        with client.messages.stream(model=SONNET, max_tokens=200, messages=HELLO) as stream:
            first_at = None
            for _ in stream.text_stream:
                first_at = first_at or time.monotonic() - start
        total = time.monotonic() - start
    assert first_at is not None
    # Lower bounds only (the pacing sleeps guarantee them; a loaded machine only adds):
    # the first token waits for half the latency, the rest comes over the other half.
    assert first_at >= 0.25 and total >= 0.55
    assert total - first_at >= 0.2
