"""The Messages API through the official anthropic SDK and raw HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import anthropic
import httpx
import pytest

from lanes.sim import Simulator, count_input_tokens, count_tokens, expected_reply

HAIKU = "claude-haiku-4-5"
SMALL = "claude-small"  # 1000-token context window on claude1
SONNET = "claude-sonnet-4-6"

HELLO: list[Any] = [{"role": "user", "content": "Summarise the plot of Hamlet in one line."}]
HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


def test_messages_round_trip_matches_expected_reply(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model=SONNET, max_tokens=512, messages=HELLO)
    text = message.content[0].text  # type: ignore[union-attr]
    assert text == expected_reply(SONNET, HELLO, None, 512)
    assert message.id.startswith("msg_")
    assert message.model == SONNET
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert message.usage.input_tokens == count_input_tokens(HELLO)
    assert message.usage.output_tokens == count_tokens(text)
    assert 20 <= message.usage.output_tokens <= 120
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_read_input_tokens == 0


def test_messages_raw_response_carries_ratelimit_headers(claude: anthropic.Anthropic) -> None:
    raw = claude.messages.with_raw_response.create(model=HAIKU, max_tokens=256, messages=HELLO)
    message = raw.parse()
    headers = raw.headers
    assert headers["request-id"].startswith("req_")
    assert headers["anthropic-ratelimit-requests-limit"] == "1000"
    assert headers["anthropic-ratelimit-requests-remaining"] == "999"
    assert headers["anthropic-ratelimit-input-tokens-limit"] == "1000000"
    # Charged on arrival, then refilled at 16,667 tokens/s until the headers are written:
    # a slow machine may already have refilled what this small request took.
    remaining = int(headers["anthropic-ratelimit-input-tokens-remaining"])
    assert 1_000_000 - message.usage.input_tokens <= remaining <= 1_000_000
    assert headers["anthropic-ratelimit-output-tokens-limit"] == "100000"
    assert headers["anthropic-ratelimit-tokens-limit"] == "100000"
    for name in ("requests", "input-tokens", "output-tokens", "tokens"):
        reset = datetime.fromisoformat(headers[f"anthropic-ratelimit-{name}-reset"])
        assert reset.tzinfo is not None
    assert "retry-after" not in headers


def test_messages_system_and_multi_turn_conversation(claude: anthropic.Anthropic) -> None:
    system = "You are a terse assistant."
    turns: list[Any] = [
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": [{"type": "text", "text": "7"}]},
        {"role": "user", "content": "Another one?"},
    ]
    message = claude.messages.create(
        model=SONNET, max_tokens=300, system=system, messages=turns, extra_body={"temperature": 0.2}
    )
    assert message.content[0].text == expected_reply(SONNET, turns, system, 300)  # type: ignore[union-attr]
    assert message.content[0].text != expected_reply(SONNET, turns, None, 300)  # type: ignore[union-attr]
    assert message.usage.input_tokens == count_input_tokens(turns, system)


def test_messages_max_tokens_cap_stops_with_max_tokens(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model=SONNET, max_tokens=5, messages=HELLO)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 5
    assert message.content[0].text == expected_reply(SONNET, HELLO, None, 5)  # type: ignore[union-attr]


def test_messages_unknown_model_raises_not_found(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model="claude-nonexistent", max_tokens=10, messages=HELLO)
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "model: claude-nonexistent"},
    }


def test_messages_oversize_prompt_raises_bad_request(claude: anthropic.Anthropic) -> None:
    long_prompt: list[Any] = [{"role": "user", "content": "x" * 4000}]
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model=SMALL, max_tokens=10, messages=long_prompt)
    assert "prompt is too long: 1014 tokens > 1000 maximum" in str(caught.value)


def test_messages_prompt_plus_max_tokens_over_window_is_rejected(
    claude: anthropic.Anthropic,
) -> None:
    prompt: list[Any] = [{"role": "user", "content": "x" * 2000}]  # 504 input tokens
    claude.messages.create(model=SMALL, max_tokens=496, messages=prompt)
    with pytest.raises(anthropic.BadRequestError, match="1001 tokens > 1000 maximum"):
        claude.messages.create(model=SMALL, max_tokens=497, messages=prompt)


def test_messages_missing_key_raises_authentication_error(sim: Simulator) -> None:
    client = anthropic.Anthropic(
        api_key="unused",
        base_url=sim.base_url("claude1"),
        max_retries=0,
        default_headers={"Authorization": anthropic.Omit()},  # type: ignore[dict-item]
    )
    with client, pytest.raises(anthropic.AuthenticationError) as caught:
        client.messages.create(model=SONNET, max_tokens=10, messages=HELLO)
    assert caught.value.status_code == 401
    assert sim.stats()["claude1"]["status_401"] == 1


def test_messages_accepts_x_api_key_header(http: httpx.Client) -> None:
    body = {"model": SONNET, "max_tokens": 50, "messages": HELLO}
    response = http.post("/claude1/v1/messages", json=body, headers=HEADERS)
    assert response.status_code == 200
    assert response.json()["content"][0]["text"] == expected_reply(SONNET, HELLO, None, 50)


def test_messages_missing_version_header_is_rejected(http: httpx.Client) -> None:
    body = {"model": SONNET, "max_tokens": 50, "messages": HELLO}
    response = http.post("/claude1/v1/messages", json=body, headers={"x-api-key": "k"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "anthropic-version" in response.json()["error"]["message"]


def test_messages_stream_must_be_a_boolean(http: httpx.Client) -> None:
    body = {"model": SONNET, "max_tokens": 10, "messages": HELLO, "stream": "yes"}
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    response = http.post("/claude1/v1/messages", json=body, headers=headers)
    assert response.status_code == 400
    assert "stream" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"max_tokens": 5, "messages": HELLO}, "model: Field required"),
        ({"model": SONNET, "messages": HELLO}, "max_tokens: Field required"),
        ({"model": SONNET, "max_tokens": 0, "messages": HELLO}, "max_tokens"),
        ({"model": SONNET, "max_tokens": "5", "messages": HELLO}, "max_tokens"),
        ({"model": SONNET, "max_tokens": 5, "messages": []}, "messages"),
        ({"model": SONNET, "max_tokens": 5, "messages": [{"role": "bot", "content": "x"}]}, "role"),
        (
            {
                "model": SONNET,
                "max_tokens": 5,
                "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}],
            },
            "source.type",
        ),
        ({"model": SONNET, "max_tokens": 5, "messages": HELLO, "temperature": 3}, "temperature"),
        (
            {"model": SONNET, "max_tokens": 5, "messages": HELLO, "thinking": {}},
            "thinking: not simulated",
        ),
        ({"model": SONNET, "max_tokens": 5, "messages": HELLO, "system": 7}, "system"),
        ({"model": SONNET, "max_tokens": 5, "messages": HELLO, "colour": "red"}, "colour: Extra"),
    ],
)
def test_messages_invalid_body_is_rejected_in_api_error_form(
    http: httpx.Client, body: dict[str, Any], fragment: str
) -> None:
    response = http.post("/claude1/v1/messages", json=body, headers=HEADERS)
    assert response.status_code == 400
    payload = response.json()
    assert set(payload) == {"type", "error"}
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "invalid_request_error"
    assert fragment in payload["error"]["message"]


def test_messages_malformed_json_is_rejected(http: httpx.Client) -> None:
    headers = HEADERS | {"content-type": "application/json"}
    response = http.post("/claude1/v1/messages", content=b"{not json", headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_models_list_in_anthropic_form(claude: anthropic.Anthropic) -> None:
    models = claude.models.list()
    assert [model.id for model in models.data] == [SONNET, HAIKU, SMALL]


def test_messages_any_model_accepted_when_profile_lists_none(sim: Simulator) -> None:
    with anthropic.Anthropic(api_key="k", base_url=sim.base_url("zai"), max_retries=0) as client:
        message = client.messages.create(model="glm-4.6", max_tokens=64, messages=HELLO)
    assert message.content[0].text == expected_reply("glm-4.6", HELLO, None, 64)  # type: ignore[union-attr]
