"""The OpenAI-compatible endpoint (LiteLLM / Ollama ``/v1``) through httpx."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from lanes.sim import Fault, Profile, Simulator, count_input_tokens, count_tokens, expected_reply

LLAMA = "llama3.1:8b"
QWEN = "qwen2.5-coder:7b"
AUTH = {"authorization": "Bearer local-key"}
CHAT: list[Any] = [
    {"role": "system", "content": "Answer in one sentence."},
    {"role": "user", "content": "Why is the sky blue?"},
]


def _chat(http: httpx.Client, instance: str = "local", **extra: Any) -> httpx.Response:
    body = {"model": LLAMA, "messages": CHAT, **extra}
    return http.post(f"/{instance}/v1/chat/completions", json=body, headers=AUTH)


def test_chat_completion_parses_in_openai_form(http: httpx.Client) -> None:
    response = _chat(http, temperature=0.7)
    assert response.status_code == 200
    payload = response.json()
    assert payload["id"].startswith("chatcmpl-")
    assert payload["object"] == "chat.completion"
    assert isinstance(payload["created"], int)
    assert payload["model"] == LLAMA
    [choice] = payload["choices"]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == expected_reply(LLAMA, CHAT, None, 10**6)
    assert choice["finish_reason"] == "stop"
    usage = payload["usage"]
    assert usage["prompt_tokens"] == count_input_tokens(CHAT)
    assert usage["completion_tokens"] == count_tokens(choice["message"]["content"])
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_chat_completion_matches_anthropic_reply_for_same_conversation(
    sim: Simulator, http: httpx.Client
) -> None:
    sim.set_profile("both", Profile())
    openai_text = _chat(http, "both", max_tokens=300).json()["choices"][0]["message"]["content"]
    with anthropic.Anthropic(api_key="k", base_url=sim.base_url("both"), max_retries=0) as client:
        message = client.messages.create(
            model=LLAMA, max_tokens=300, system=CHAT[0]["content"], messages=CHAT[1:]
        )
    assert message.content[0].text == openai_text  # type: ignore[union-attr]


def test_chat_completion_max_tokens_gives_finish_reason_length(http: httpx.Client) -> None:
    payload = _chat(http, max_tokens=4).json()
    assert payload["choices"][0]["finish_reason"] == "length"
    assert payload["usage"]["completion_tokens"] == 4


def test_chat_completion_prefers_max_completion_tokens(http: httpx.Client) -> None:
    payload = _chat(http, max_tokens=500, max_completion_tokens=3).json()
    assert payload["usage"]["completion_tokens"] == 3


def test_models_lists_instance_models_in_openai_form(http: httpx.Client) -> None:
    response = http.get("/local/v1/models", headers=AUTH)
    assert response.status_code == 200
    payload = response.json()
    assert payload["object"] == "list"
    assert [model["id"] for model in payload["data"]] == [LLAMA, QWEN]
    assert all(model["object"] == "model" for model in payload["data"])


def test_chat_completion_429_in_openai_error_form(sim: Simulator, http: httpx.Client) -> None:
    sim.set_profile("tight", Profile(requests_per_min=1, input_tokens_per_min=10_000))
    assert _chat(http, "tight").status_code == 200
    response = _chat(http, "tight")
    assert response.status_code == 429
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] is None
    assert error["code"] == "rate_limit_exceeded"
    assert error["type"] == "requests"
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-ratelimit-limit-requests"] == "1"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert response.headers["x-ratelimit-limit-tokens"] == "10000"
    assert int(response.headers["x-ratelimit-remaining-tokens"]) < 10_000


def test_chat_completion_success_carries_ratelimit_headers(
    sim: Simulator, http: httpx.Client
) -> None:
    sim.set_profile("tight", Profile(requests_per_min=10))
    response = _chat(http, "tight")
    assert response.headers["x-ratelimit-limit-requests"] == "10"
    assert response.headers["x-ratelimit-remaining-requests"] == "9"
    assert response.headers["x-ratelimit-reset-requests"].endswith("s")


def test_chat_completion_missing_bearer_is_401(http: httpx.Client) -> None:
    body = {"model": LLAMA, "messages": CHAT}
    response = http.post("/local/v1/chat/completions", json=body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_chat_completion_without_key_allowed_when_profile_says_so(
    sim: Simulator, http: httpx.Client
) -> None:
    sim.set_profile("ollama", Profile(require_api_key=False))
    body = {"model": LLAMA, "messages": CHAT}
    assert http.post("/ollama/v1/chat/completions", json=body).status_code == 200


def test_chat_completion_unknown_model_is_404(http: httpx.Client) -> None:
    body = {"model": "gpt-nope", "messages": CHAT}
    response = http.post("/local/v1/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


def test_chat_completion_over_context_window_is_400(sim: Simulator, http: httpx.Client) -> None:
    sim.set_profile("small", Profile(default_context_window=100))
    response = _chat(http, "small", max_tokens=90)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


def test_chat_completion_fault_529_answers_503(sim: Simulator, http: httpx.Client) -> None:
    sim.set_fault("local", Fault(kind="529"))
    response = _chat(http)
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "server_error"
    assert sim.stats()["local"]["status_503"] == 1


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"stream": "yes"}, "stream"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"n": 2}, "n=1"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "role"),
        ({"max_tokens": -1}, "max_tokens"),
    ],
)
def test_chat_completion_invalid_body_is_400(
    http: httpx.Client, extra: dict[str, Any], fragment: str
) -> None:
    response = _chat(http, **extra)
    assert response.status_code == 400
    assert fragment in response.json()["error"]["message"]
