"""Injected faults, seen through the anthropic SDK the way a worker would see them."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from lanes.sim import Fault, Profile, Simulator

SONNET = "claude-sonnet-4-6"

HELLO: list[Any] = [{"role": "user", "content": "ping"}]


def _call(client: anthropic.Anthropic) -> anthropic.types.Message:
    return client.messages.create(model=SONNET, max_tokens=256, messages=HELLO)


def test_fault_429_raises_rate_limit_error_with_retry_after(
    sim: Simulator, claude: anthropic.Anthropic
) -> None:
    sim.set_fault("claude1", Fault(kind="429", retry_after_s=3))
    with pytest.raises(anthropic.RateLimitError) as caught:
        _call(claude)
    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.body == {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "Number of requests has exceeded your rate limit.",
        },
    }


def test_fault_429_without_retry_after_omits_the_header(
    sim: Simulator, claude: anthropic.Anthropic
) -> None:
    sim.set_fault("claude1", Fault(kind="429", retry_after_s=None))
    with pytest.raises(anthropic.RateLimitError) as caught:
        _call(claude)
    assert "retry-after" not in caught.value.response.headers


def test_fault_529_raises_overloaded_error(sim: Simulator, claude: anthropic.Anthropic) -> None:
    sim.set_fault("claude1", Fault(kind="529"))
    with pytest.raises(anthropic.OverloadedError) as caught:
        _call(claude)
    assert caught.value.status_code == 529
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "overloaded_error"


def test_fault_500_raises_internal_server_error(
    sim: Simulator, claude: anthropic.Anthropic
) -> None:
    sim.set_fault("claude1", Fault(kind="500"))
    with pytest.raises(anthropic.InternalServerError) as caught:
        _call(claude)
    assert caught.value.status_code == 500
    assert not isinstance(caught.value, anthropic.OverloadedError)


def test_fault_401_raises_authentication_error(sim: Simulator, claude: anthropic.Anthropic) -> None:
    sim.set_fault("claude1", Fault(kind="401"))
    with pytest.raises(anthropic.AuthenticationError):
        _call(claude)


def test_fault_drop_raises_connection_error_then_recovers(
    sim: Simulator, claude: anthropic.Anthropic
) -> None:
    sim.set_fault("claude1", Fault(kind="drop"))
    with pytest.raises(anthropic.APIConnectionError) as caught:
        _call(claude)
    assert not isinstance(caught.value, anthropic.APITimeoutError)
    sim.clear_faults("claude1")
    assert _call(claude).stop_reason == "end_turn"
    assert sim.stats()["claude1"]["dropped"] == 1


def test_fault_timeout_raises_timeout_error(sim: Simulator, claude: anthropic.Anthropic) -> None:
    sim.set_fault("claude1", Fault(kind="timeout", delay_s=30))
    with pytest.raises(anthropic.APITimeoutError):
        claude.with_options(timeout=0.5).messages.create(
            model=SONNET, max_tokens=32, messages=HELLO
        )


def test_fault_count_injects_exactly_that_many(sim: Simulator, claude: anthropic.Anthropic) -> None:
    sim.set_fault("claude1", Fault(kind="529", count=2))
    outcomes = []
    for _ in range(5):
        try:
            _call(claude)
            outcomes.append("ok")
        except anthropic.OverloadedError:
            outcomes.append("529")
    assert outcomes == ["529", "529", "ok", "ok", "ok"]
    assert sim.faults() == {}


def test_fault_rate_draws_are_reproducible_with_a_seed() -> None:
    def run(seed: int) -> list[int]:
        with Simulator(seed=seed) as sim, httpx.Client(base_url=sim.url) as http:
            sim.set_fault("zai", Fault(kind="500", rate=0.5))
            body = {"model": "glm-4.6", "messages": HELLO}
            return [
                http.post(
                    "/zai/v1/chat/completions", json=body, headers={"authorization": "Bearer k"}
                ).status_code
                for _ in range(30)
            ]

    first = run(seed=7)
    assert first == run(seed=7)
    assert set(first) == {200, 500}


def test_fault_applies_only_to_its_instance(sim: Simulator) -> None:
    sim.set_fault("claude1", Fault(kind="529"))
    with anthropic.Anthropic(api_key="k", base_url=sim.base_url("zai"), max_retries=0) as other:
        assert _call(other).stop_reason == "end_turn"


def test_fault_added_faults_fire_in_order(sim: Simulator, claude: anthropic.Anthropic) -> None:
    sim.add_fault("claude1", Fault(kind="500", count=1))
    sim.add_fault("claude1", Fault(kind="529", count=1))
    with pytest.raises(anthropic.InternalServerError) as first:
        _call(claude)
    assert first.value.status_code == 500
    with pytest.raises(anthropic.OverloadedError):
        _call(claude)
    assert _call(claude).stop_reason == "end_turn"


def test_fault_set_profile_keeps_faults_armed(sim: Simulator, claude: anthropic.Anthropic) -> None:
    sim.set_fault("claude1", Fault(kind="500"))
    sim.set_profile("claude1", Profile(models=[SONNET]))
    with pytest.raises(anthropic.InternalServerError):
        _call(claude)


def test_fault_kind_accepts_a_number_from_json() -> None:
    assert Fault.model_validate({"kind": 429}).kind == "429"
