"""Per-minute limits over HTTP: small limits, counted 429s, no clocks."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from lanes.sim import Profile, Simulator

SONNET = "claude-sonnet-4-6"

HELLO: list[Any] = [{"role": "user", "content": "ping"}]


def _client(sim: Simulator, instance: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="k", base_url=sim.base_url(instance), max_retries=0)


def _outcomes(client: anthropic.Anthropic, prompts: list[str], max_tokens: int = 32) -> list[str]:
    outcomes = []
    for prompt in prompts:
        messages: list[Any] = [{"role": "user", "content": prompt}]
        try:
            client.messages.create(model=SONNET, max_tokens=max_tokens, messages=messages)
            outcomes.append("ok")
        except anthropic.RateLimitError:
            outcomes.append("429")
    return outcomes


def test_rpm_bucket_answers_exactly_the_limit_then_429(sim: Simulator) -> None:
    sim.set_profile("tight", Profile(requests_per_min=5))
    with _client(sim, "tight") as client:
        assert _outcomes(client, ["ping"] * 8) == ["ok"] * 5 + ["429"] * 3
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model=SONNET, max_tokens=32, messages=HELLO)
    headers = caught.value.response.headers
    assert int(headers["retry-after"]) >= 1
    assert headers["anthropic-ratelimit-requests-limit"] == "5"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    stats = sim.stats()["tight"]
    assert (stats["ok"], stats["status_429"], stats["rate_limited"]) == (5, 4, 4)


def test_refused_request_consumes_nothing(sim: Simulator) -> None:
    sim.set_profile("tight", Profile(requests_per_min=3, input_tokens_per_min=100))
    big, small = "x" * 224, "ping"  # 60 and 5 input tokens
    with _client(sim, "tight") as client:
        assert _outcomes(client, [big, big, small, small, small]) == [
            "ok",
            "429",
            "ok",
            "ok",
            "429",
        ]


def test_input_token_bucket_limits_large_prompts(sim: Simulator) -> None:
    sim.set_profile("tight", Profile(input_tokens_per_min=100))
    with _client(sim, "tight") as client:
        assert _outcomes(client, ["x" * 224] * 3) == ["ok", "429", "429"]
        with pytest.raises(anthropic.RateLimitError) as caught:
            _outcomes_raise(client, "x" * 224)
    assert caught.value.response.headers["anthropic-ratelimit-input-tokens-limit"] == "100"


def _outcomes_raise(client: anthropic.Anthropic, prompt: str) -> None:
    messages: list[Any] = [{"role": "user", "content": prompt}]
    client.messages.create(model=SONNET, max_tokens=32, messages=messages)


def test_output_bucket_charges_max_tokens_and_refunds_the_rest(sim: Simulator) -> None:
    sim.set_profile("tight", Profile(output_tokens_per_min=1000))
    with _client(sim, "tight") as client:
        # Each call needs 600 up front; without the refund the second could not fit.
        assert _outcomes(client, ["a", "b"], max_tokens=600) == ["ok", "ok"]
    used = sim.stats()["tight"]["output_tokens"]
    assert 0 < used < 400


def test_output_bucket_refuses_when_max_tokens_does_not_fit(sim: Simulator) -> None:
    sim.set_profile("tight", Profile(output_tokens_per_min=1000))
    with _client(sim, "tight") as client, pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model=SONNET, max_tokens=600, messages=HELLO)
        # The first call used a few dozen tokens, so a full minute's worth no longer fits.
        client.messages.create(model=SONNET, max_tokens=1000, messages=HELLO)
    assert "output tokens per minute" in str(caught.value)


def test_set_profile_refills_the_buckets(sim: Simulator) -> None:
    sim.set_profile("tight", Profile(requests_per_min=1))
    with _client(sim, "tight") as client:
        assert _outcomes(client, ["a", "b"]) == ["ok", "429"]
        sim.set_profile("tight", Profile(requests_per_min=1))
        assert _outcomes(client, ["c"]) == ["ok"]
