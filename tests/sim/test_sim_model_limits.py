"""Per-model limits over HTTP: a model with its own limits has its own buckets, every other
model shares the instance-wide ones, and 429s and headers describe the buckets that governed
the request."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest
from pydantic import ValidationError

from lanes.sim import ModelLimits, Profile, SimControl, Simulator

HAIKU = "claude-haiku-4-5"
SONNET = "claude-sonnet-4-6"
LLAMA = "llama3.1:8b"
QWEN = "qwen2.5-coder:7b"

HELLO: list[Any] = [{"role": "user", "content": "ping"}]
AUTH = {"authorization": "Bearer local-key"}


def _client(sim: Simulator, instance: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="k", base_url=sim.base_url(instance), max_retries=0)


def _outcomes(client: anthropic.Anthropic, model: str, calls: int) -> list[str]:
    outcomes = []
    for _ in range(calls):
        try:
            client.messages.create(model=model, max_tokens=32, messages=HELLO)
            outcomes.append("ok")
        except anthropic.RateLimitError:
            outcomes.append("429")
    return outcomes


def _chat(http: httpx.Client, model: str) -> httpx.Response:
    body = {"model": model, "messages": HELLO, "max_tokens": 32}
    return http.post("/box/v1/chat/completions", json=body, headers=AUTH)


def test_sim_model_limits_refuse_the_model_past_its_own_rpm_while_others_answer(
    sim: Simulator,
) -> None:
    profile = Profile(
        models=[SONNET, HAIKU],
        requests_per_min=100,
        model_limits={HAIKU: ModelLimits(requests_per_min=2)},
    )
    sim.set_profile("acct", profile)
    with _client(sim, "acct") as client:
        assert _outcomes(client, HAIKU, 3) == ["ok", "ok", "429"]
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model=HAIKU, max_tokens=32, messages=HELLO)
        raw = client.messages.with_raw_response.create(model=SONNET, max_tokens=32, messages=HELLO)
        message = raw.parse()
    assert message.model == SONNET
    limited = caught.value.response.headers
    assert limited["anthropic-ratelimit-requests-limit"] == "2"
    assert limited["anthropic-ratelimit-requests-remaining"] == "0"
    assert int(limited["retry-after"]) >= 1
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert f"2 requests per minute for {HAIKU}" in caught.value.body["error"]["message"]
    # The haiku calls drew nothing from the shared buckets: sonnet's is full but for itself.
    assert raw.headers["anthropic-ratelimit-requests-limit"] == "100"
    assert raw.headers["anthropic-ratelimit-requests-remaining"] == "99"
    stats = sim.stats()["acct"]
    assert (stats["ok"], stats["rate_limited"]) == (3, 2)


def test_sim_model_limits_spent_shared_buckets_leave_the_model_with_its_own(
    sim: Simulator,
) -> None:
    profile = Profile(
        models=[SONNET, HAIKU],
        requests_per_min=1,
        model_limits={HAIKU: ModelLimits(requests_per_min=5)},
    )
    sim.set_profile("acct", profile)
    with _client(sim, "acct") as client:
        assert _outcomes(client, SONNET, 2) == ["ok", "429"]
        assert _outcomes(client, HAIKU, 6) == ["ok"] * 5 + ["429"]


def test_sim_model_limits_token_headers_describe_the_models_own_buckets(
    sim: Simulator,
) -> None:
    own = ModelLimits(input_tokens_per_min=1000, output_tokens_per_min=500)
    profile = Profile(
        models=[SONNET, HAIKU],
        requests_per_min=100,
        input_tokens_per_min=1_000_000,
        model_limits={HAIKU: own},
    )
    sim.set_profile("acct", profile)
    with _client(sim, "acct") as client:
        raw = client.messages.with_raw_response.create(model=HAIKU, max_tokens=32, messages=HELLO)
        message = raw.parse()
    headers = raw.headers
    assert message.usage.input_tokens > 0
    assert headers["anthropic-ratelimit-input-tokens-limit"] == "1000"
    assert headers["anthropic-ratelimit-output-tokens-limit"] == "500"
    assert headers["anthropic-ratelimit-tokens-limit"] == "500"
    # Haiku's own class has no request limit; the instance-wide one is not haiku's to report.
    assert "anthropic-ratelimit-requests-limit" not in headers


def test_sim_model_limits_openai_429_and_headers_follow_the_model(sim: Simulator) -> None:
    profile = Profile(
        models=[LLAMA, QWEN],
        requests_per_min=10,
        model_limits={LLAMA: ModelLimits(requests_per_min=1)},
    )
    sim.set_profile("box", profile)
    with httpx.Client(base_url=sim.url, timeout=10.0) as http:
        first, second, other = _chat(http, LLAMA), _chat(http, LLAMA), _chat(http, QWEN)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "1"
    assert second.status_code == 429
    assert second.headers["x-ratelimit-limit-requests"] == "1"
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    error = second.json()["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert LLAMA in error["message"]
    assert other.status_code == 200
    assert other.headers["x-ratelimit-limit-requests"] == "10"
    assert other.headers["x-ratelimit-remaining-requests"] == "9"


def test_sim_model_limits_set_profile_refills_every_model_class(sim: Simulator) -> None:
    profile = Profile(models=[HAIKU], model_limits={HAIKU: ModelLimits(requests_per_min=1)})
    sim.set_profile("acct", profile)
    with _client(sim, "acct") as client:
        assert _outcomes(client, HAIKU, 2) == ["ok", "429"]
        sim.set_profile("acct", profile)
        assert _outcomes(client, HAIKU, 1) == ["ok"]


def test_sim_model_limits_profile_refuses_limits_for_a_model_it_does_not_serve() -> None:
    with pytest.raises(ValidationError, match="model_limits: claude-haiku-4-5 not in models"):
        Profile(models=[SONNET], model_limits={HAIKU: ModelLimits(requests_per_min=1)})
    with pytest.raises(ValidationError, match="concurrency"):
        ModelLimits.model_validate({"requests_per_min": 1, "concurrency": 2})
    with pytest.raises(ValidationError):
        ModelLimits(requests_per_min=-1)
    # An empty ``models`` serves every name, so any model may have limits of its own.
    assert Profile(model_limits={HAIKU: ModelLimits()}).limits_for(HAIKU)[0] == HAIKU


def test_sim_model_limits_limits_for_names_the_class_and_its_limits() -> None:
    own = ModelLimits(requests_per_min=3)
    profile = Profile(models=[SONNET, HAIKU], requests_per_min=9, model_limits={HAIKU: own})
    assert profile.limits_for(HAIKU) == (HAIKU, own)
    assert profile.limits_for(SONNET) == (None, ModelLimits(requests_per_min=9))


def test_sim_model_limits_survive_the_control_api(sim: Simulator) -> None:
    profile = Profile(models=[SONNET, HAIKU], model_limits={HAIKU: ModelLimits(requests_per_min=1)})
    with SimControl(sim.url) as control:
        control.set_profile("remote", profile)
        assert control.profiles()["remote"] == profile
    with _client(sim, "remote") as client:
        assert _outcomes(client, HAIKU, 2) == ["ok", "429"]
        assert _outcomes(client, SONNET, 1) == ["ok"]
