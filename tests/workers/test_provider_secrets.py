"""A provider (or proxy) that quotes the API key back in its error: the key goes nowhere.

The fake provider here is a real HTTP server on loopback that answers every call with a 401
whose body repeats the key it was sent, as some LiteLLM proxies do.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lanes.broker.message import Envelope
from lanes.kernel.config import Config
from lanes.kernel.errors import AuthFailed
from lanes.router.decision import Step
from lanes.router.job import Job
from lanes.stores.memory import memory_stores
from lanes.workers.context import WorkerContext
from lanes.workers.outcome import Done
from lanes.workers.providers import (
    AnthropicProvider,
    OpenAIProvider,
    ProviderRequest,
    build_provider,
)
from lanes.workers.providers.scrub import REDACTED, Scrubber
from lanes.workers.runner import run_step

from ..fakes import key_echoing_provider

CANARY = "sk-canary-0123456789abcdef"
REQUEST = ProviderRequest(model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=8)


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    with key_echoing_provider() as url:
        yield url


def _auth_error(provider: AnthropicProvider | OpenAIProvider) -> AuthFailed:
    with pytest.raises(AuthFailed) as info:
        provider.call(REQUEST)
    return info.value


def test_provider_secrets_anthropic_error_quoting_the_key_is_scrubbed(echo_url: str) -> None:
    provider = AnthropicProvider(base_url=echo_url, api_key=CANARY, timeout_s=5,
                                 scrub=Scrubber([CANARY]))  # fmt: skip
    error = _auth_error(provider)
    assert CANARY not in str(error) and REDACTED in str(error)
    assert error.__cause__ is None and error.__suppress_context__  # no vendor text chained


def test_provider_secrets_openai_bearer_echo_is_scrubbed(echo_url: str) -> None:
    provider = OpenAIProvider(base_url=echo_url, api_key=CANARY, timeout_s=5,
                              scrub=Scrubber([CANARY]))  # fmt: skip
    error = _auth_error(provider)
    assert CANARY not in str(error) and f"Bearer {REDACTED}" in str(error)


def test_provider_secrets_scrubber_hides_bearer_tokens_it_was_not_told_about() -> None:
    scrub = Scrubber(["abcd1234"])
    assert scrub("key abcd1234 and Bearer other-token, done") == (
        f"key {REDACTED} and Bearer {REDACTED}, done"
    )
    assert scrub("no secret here") == "no secret here"


def test_provider_secrets_key_reaches_no_result_no_reason_no_lane_state(
    example_config: Config, echo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the worker: the real provider client built from the config, in-memory stores."""
    monkeypatch.setenv("ZAI_API_KEY", CANARY)
    zai = example_config.instances["zai"].model_copy(update={"base_url": echo_url})
    sim = example_config.simulator.model_copy(update={"mode": "never"})
    config = example_config.model_copy(
        update={"instances": {**example_config.instances, "zai": zai}, "simulator": sim}
    )
    ctx = WorkerContext(config=config, stores=memory_stores(), providers=build_provider)
    steps = [Step(instance="zai", model="glm-4.6")]
    env = Envelope(job=Job(prompt="hello", max_tokens=8), chain=steps, instance="zai")
    outcome = run_step(ctx, env)
    assert isinstance(outcome, Done) and outcome.result.status == "failed"
    error = outcome.result.error or ""
    disabled = ctx.stores.lane_state.status("zai").disabled_reason or ""
    assert "invalid key" in error and "invalid key" in disabled
    assert CANARY not in outcome.result.model_dump_json() and CANARY not in disabled
