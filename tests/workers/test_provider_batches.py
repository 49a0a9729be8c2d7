"""lanes' batch clients end to end against the simulator's batch APIs."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any, Literal

import pytest

from lanes.kernel.config import Config
from lanes.kernel.errors import AuthFailed, BadRequest, ConnectionFailed, ServerError
from lanes.sim import BATCH_BILLED, Profile, Simulator, expected_reply
from lanes.workers.providers import (
    AnthropicBatchProvider,
    BatchItem,
    BatchOutcome,
    BatchProvider,
    OpenAIBatchProvider,
    ProviderRequest,
    build_batch_provider,
)
from lanes.workers.providers.anthropic_provider import anthropic_params
from lanes.workers.providers.openai_provider import openai_body
from lanes.workers.providers.scrub import REDACTED, Scrubber

from ..fakes import key_echoing_provider

Kind = Literal["anthropic", "openai"]
KINDS: list[Kind] = ["anthropic", "openai"]
HAIKU = "claude-haiku-4-5"
SMALL = "claude-small"  # 1000-token context window
LLAMA = "llama3.1:8b"
QWEN = "qwen2.5-coder:7b"
MODEL: dict[Kind, str] = {"anthropic": HAIKU, "openai": LLAMA}
MESSAGES = [{"role": "user", "content": "Explain the retry policy in one line."}]
PREFIX = "You review pull requests for a distributed job router. " * 8


def _profile(models: list[str], **knobs: Any) -> Profile:
    return Profile(models=models, context_windows={SMALL: 1000}, **knobs)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    profiles: dict[str, Profile] = {}
    for kind, models in (("anthropic", [HAIKU, SMALL]), ("openai", [LLAMA, QWEN, SMALL])):
        profiles[kind] = _profile(models, batch_delay_s=0.05)
        profiles[f"{kind}-slow"] = _profile(models, batch_delay_s=30)
        profiles[f"{kind}-expiring"] = _profile(models, batch_delay_s=30, batch_expire_s=0.05)
        profiles[f"{kind}-flaky"] = _profile(models, batch_delay_s=0.05, batch_error_rate=1.0)
    with Simulator(port=0, profiles=profiles) as server:
        yield server


def _provider(sim: Simulator, kind: Kind, flavour: str = "") -> BatchProvider:
    instance = f"{kind}-{flavour}" if flavour else kind
    if kind == "anthropic":
        return AnthropicBatchProvider(base_url=sim.base_url(instance), api_key="k", timeout_s=10)
    return OpenAIBatchProvider(base_url=sim.base_url(instance) + "/v1", api_key="k", timeout_s=10)


def _request(model: str, **fields: Any) -> ProviderRequest:
    return ProviderRequest(model=model, messages=MESSAGES, max_tokens=200, **fields)


def _wait(provider: BatchProvider, batch_id: str) -> None:
    deadline = time.monotonic() + 5
    while not provider.status(batch_id).ended:
        assert time.monotonic() < deadline, "the batch did not end"
        time.sleep(0.02)


def _run(provider: BatchProvider, items: list[BatchItem]) -> dict[str, BatchOutcome]:
    batch_id = provider.submit(items)
    _wait(provider, batch_id)
    return {outcome.custom_id: outcome for outcome in provider.results(batch_id)}


def _expected(kind: Kind, request: ProviderRequest) -> str:
    """The simulator's answer to ``request`` as the client sends it."""
    if kind == "anthropic":
        params = anthropic_params(request)
        return expected_reply(request.model, MESSAGES, params.get("system"), request.max_tokens)
    body = openai_body(request)
    return expected_reply(request.model, body["messages"], None, request.max_tokens)


@pytest.mark.parametrize("kind", KINDS)
def test_batch_provider_round_trip_with_a_cache_prefix(sim: Simulator, kind: Kind) -> None:
    provider = _provider(sim, kind)
    plain = _request(MODEL[kind], system="terse")
    cached = _request(MODEL[kind], system="terse", cache_prefix=PREFIX, cache_ttl="1h")
    before = sim.stats()[kind].get(f"{BATCH_BILLED}{MODEL[kind]}:output_tokens", 0)
    outcomes = _run(provider, [BatchItem("plain", plain), BatchItem("cached-1", cached)])
    assert set(outcomes) == {"plain", "cached-1"}
    for custom_id, request in (("plain", plain), ("cached-1", cached)):
        outcome = outcomes[custom_id]
        assert outcome.kind == "succeeded" and outcome.error is None
        response = outcome.response
        assert response is not None
        assert response.text == _expected(kind, request)
        assert response.input_tokens > 0 and response.output_tokens > 0
        assert response.stop_reason == "end_turn" and response.latency_s == 0.0
        assert response.request_id
    billed = sum(o.response.output_tokens for o in outcomes.values() if o.response)
    after = sim.stats()[kind][f"{BATCH_BILLED}{MODEL[kind]}:output_tokens"]
    assert after - before == billed
    provider.close()


@pytest.mark.parametrize("kind", KINDS)
def test_batch_provider_status_before_and_after_the_end(sim: Simulator, kind: Kind) -> None:
    provider = _provider(sim, kind)
    batch_id = provider.submit([BatchItem("a", _request(MODEL[kind]))])
    early = provider.status(batch_id)
    assert early.batch_id == batch_id and not early.ended
    assert early.status in ("in_progress", "validating")
    _wait(provider, batch_id)
    ended = provider.status(batch_id)
    assert ended.status == ("ended" if kind == "anthropic" else "completed")
    assert ended.counts["succeeded" if kind == "anthropic" else "completed"] == 1


@pytest.mark.parametrize("kind", KINDS)
def test_batch_provider_maps_request_errors(sim: Simulator, kind: Kind) -> None:
    provider = _provider(sim, kind)
    unknown = _run(provider, [BatchItem("unknown", _request("model-nope"))])["unknown"]
    assert unknown.kind == "errored" and unknown.response is None
    assert isinstance(unknown.error, BadRequest) and unknown.error.status == 404
    too_long = ProviderRequest(model=SMALL, messages=MESSAGES, max_tokens=2000)
    long_outcome = _run(provider, [BatchItem("long", too_long)])["long"]
    assert isinstance(long_outcome.error, BadRequest) and long_outcome.error.status == 400


@pytest.mark.parametrize("kind", KINDS)
def test_batch_provider_maps_server_errors(sim: Simulator, kind: Kind) -> None:
    outcome = _run(_provider(sim, kind, "flaky"), [BatchItem("a", _request(MODEL[kind]))])["a"]
    assert outcome.kind == "errored"
    assert isinstance(outcome.error, ServerError) and outcome.error.status == 500
    assert outcome.error.retryable


@pytest.mark.parametrize("kind", KINDS)
def test_batch_provider_cancel_cancels_what_is_left(sim: Simulator, kind: Kind) -> None:
    provider = _provider(sim, kind, "slow")
    items = [BatchItem(f"r{i}", _request(MODEL[kind])) for i in range(3)]
    batch_id = provider.submit(items)
    canceling = provider.cancel(batch_id)
    assert not canceling.ended and canceling.status in ("canceling", "cancelling")
    _wait(provider, batch_id)
    outcomes = provider.results(batch_id)
    assert [o.custom_id for o in outcomes] == ["r0", "r1", "r2"]
    assert {o.kind for o in outcomes} == {"canceled"}


@pytest.mark.parametrize("kind", KINDS)
def test_batch_provider_cancel_of_an_ended_batch_reports_it(sim: Simulator, kind: Kind) -> None:
    provider = _provider(sim, kind)
    batch_id = provider.submit([BatchItem("a", _request(MODEL[kind]))])
    _wait(provider, batch_id)
    status = provider.cancel(batch_id)
    assert status.ended and status.status in ("ended", "completed")


@pytest.mark.parametrize("kind", KINDS)
def test_batch_provider_reports_expired_requests(sim: Simulator, kind: Kind) -> None:
    outcomes = _run(_provider(sim, kind, "expiring"), [BatchItem("a", _request(MODEL[kind]))])
    assert outcomes["a"].kind == "expired" and outcomes["a"].response is None


@pytest.mark.parametrize("kind", KINDS)
def test_batch_provider_results_before_the_end_are_refused(sim: Simulator, kind: Kind) -> None:
    provider = _provider(sim, kind, "slow")
    batch_id = provider.submit([BatchItem("a", _request(MODEL[kind]))])
    with pytest.raises(BadRequest):
        provider.results(batch_id)
    with pytest.raises(BadRequest) as caught:
        provider.status("batch-that-does-not-exist")
    assert caught.value.status == 404


def test_openai_batch_provider_one_model_per_batch(sim: Simulator) -> None:
    """OpenAI refuses a file that mixes models: every item comes back errored."""
    items = [BatchItem("a", _request(LLAMA)), BatchItem("b", _request(QWEN))]
    outcomes = _run(_provider(sim, "openai"), items)
    assert [outcomes[cid].kind for cid in ("a", "b")] == ["errored", "errored"]
    error = outcomes["a"].error
    assert isinstance(error, BadRequest) and "model" in str(error)


@pytest.mark.parametrize("kind", KINDS)
def test_batch_provider_scrubs_a_key_quoted_back(kind: Kind) -> None:
    key = "sk-canary-batch-0123456789"
    with key_echoing_provider() as url:
        scrub = Scrubber([key])
        provider: BatchProvider
        if kind == "anthropic":
            provider = AnthropicBatchProvider(base_url=url, api_key=key, timeout_s=5, scrub=scrub)
        else:
            provider = OpenAIBatchProvider(base_url=url, api_key=key, timeout_s=5, scrub=scrub)
        with pytest.raises(AuthFailed) as caught:
            provider.submit([BatchItem("a", _request("m"))])
    assert key not in str(caught.value) and REDACTED in str(caught.value)
    assert caught.value.__cause__ is None


@pytest.mark.parametrize("kind", KINDS)
def test_batch_provider_unreachable_is_a_connection_failure(kind: Kind) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    provider: BatchProvider
    if kind == "anthropic":
        provider = AnthropicBatchProvider(base_url=url, api_key="k", timeout_s=2)
    else:
        provider = OpenAIBatchProvider(base_url=url + "/v1", api_key="k", timeout_s=2)
    with pytest.raises(ConnectionFailed):
        provider.status("any")


def test_build_batch_provider_follows_the_config(example_config: Config, sim: Simulator) -> None:
    simulator = example_config.simulator.model_copy(update={"mode": "always", "port": sim.port})
    config = example_config.model_copy(update={"simulator": simulator})
    cases: list[tuple[str, type, str]] = [
        ("claude1", AnthropicBatchProvider, HAIKU),
        ("koala", OpenAIBatchProvider, LLAMA),
    ]
    for instance, kind, model in cases:
        sim.set_profile(instance, Profile(batch_delay_s=0.05))
        provider = build_batch_provider(config, instance)
        assert isinstance(provider, kind)
        outcome = _run(provider, [BatchItem("a", _request(model))])["a"]
        assert outcome.kind == "succeeded"
        provider.close()
