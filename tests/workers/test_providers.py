from __future__ import annotations

from collections.abc import Iterator

import pytest

from lanes.kernel.errors import (
    AuthFailed,
    BadRequest,
    ConnectionFailed,
    Overloaded,
    ProviderTimeout,
    RateLimited,
    ServerError,
)
from lanes.sim import Fault, Profile, Simulator, expected_reply
from lanes.workers.providers import AnthropicProvider, OpenAIProvider, ProviderRequest

MESSAGES = [{"role": "user", "content": "Explain the retry policy in one line."}]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    profiles = {
        "acct": Profile(models=["claude-haiku-4-5"], requests_per_min=10_000),
        "local": Profile(models=["llama3.1:8b"]),
    }
    with Simulator(port=0, profiles=profiles) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_faults(sim: Simulator) -> Iterator[None]:
    yield
    sim.clear_faults(None)


def _anthropic(sim: Simulator, timeout_s: float = 10) -> AnthropicProvider:
    return AnthropicProvider(base_url=sim.base_url("acct"), api_key="k", timeout_s=timeout_s)


def _request(model: str = "claude-haiku-4-5", timeout_s: float = 10) -> ProviderRequest:
    return ProviderRequest(model=model, messages=MESSAGES, max_tokens=200, system="terse",
                           timeout_s=timeout_s)  # fmt: skip


def test_anthropic_provider_reads_text_usage_and_headers(sim: Simulator) -> None:
    resp = _anthropic(sim).call(_request())
    assert resp.text == expected_reply("claude-haiku-4-5", MESSAGES, "terse", 200)
    assert resp.input_tokens > 0 and resp.output_tokens > 0
    assert resp.stop_reason == "end_turn"
    assert "anthropic-ratelimit-requests-remaining" in resp.rate_limit_headers
    assert resp.request_id


def test_openai_provider_reads_text_and_usage(sim: Simulator) -> None:
    provider = OpenAIProvider(base_url=sim.base_url("local") + "/v1", api_key="k", timeout_s=10)
    resp = provider.call(_request("llama3.1:8b"))
    assert resp.text == expected_reply("llama3.1:8b", MESSAGES, "terse", 200)
    assert resp.input_tokens > 0 and resp.output_tokens > 0


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault(kind="429", retry_after_s=7), RateLimited),
        (Fault(kind="529"), Overloaded),
        (Fault(kind="500"), ServerError),
        (Fault(kind="401"), AuthFailed),
        (Fault(kind="drop"), ConnectionFailed),
    ],
)
@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_provider_maps_faults_to_lanes_errors(
    sim: Simulator, fault: Fault, error: type[Exception], kind: str
) -> None:
    instance = "acct" if kind == "anthropic" else "local"
    sim.set_fault(instance, fault)
    if kind == "anthropic":
        provider = _anthropic(sim)
        request = _request()
    else:
        provider = OpenAIProvider(base_url=sim.base_url("local") + "/v1", api_key="k", timeout_s=10)  # type: ignore[assignment]
        request = _request("llama3.1:8b")
    with pytest.raises(error) as info:
        provider.call(request)
    if isinstance(info.value, RateLimited):
        assert info.value.retry_after_s == 7


def test_provider_timeout_is_provider_timeout(sim: Simulator) -> None:
    sim.set_fault("acct", Fault(kind="timeout", delay_s=3))
    with pytest.raises(ProviderTimeout):
        _anthropic(sim, timeout_s=0.5).call(_request(timeout_s=0.5))


def test_provider_unknown_model_is_not_retryable(sim: Simulator) -> None:
    with pytest.raises(BadRequest) as info:
        _anthropic(sim).call(_request("claude-nonexistent"))
    assert info.value.retryable is False and info.value.status == 404
