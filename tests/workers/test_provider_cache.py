"""The providers read prompt-cache usage the simulator reports, each token counted once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lanes.sim import Profile, Simulator, count_input_tokens, count_tokens, expected_reply
from lanes.workers.providers import AnthropicProvider, OpenAIProvider, ProviderRequest
from lanes.workers.providers.base import CacheTTL

HAIKU = "claude-haiku-4-5"
LLAMA = "llama3.1:8b"
MESSAGES = [{"role": "user", "content": "Which rule applies here?"}]
PREFIX = "Rule book: every lane is billed once per token. " * 400  # 19,200 chars: 4800 tokens


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(default_profile=Profile()) as server:
        yield server


def _request(model: str = HAIKU, ttl: CacheTTL = "5m") -> ProviderRequest:
    return ProviderRequest(model=model, messages=MESSAGES, max_tokens=200, system="Be terse.",
                           cache_prefix=PREFIX, cache_ttl=ttl)  # fmt: skip


@pytest.mark.parametrize("ttl", ["5m", "1h"])
def test_anthropic_provider_reports_a_write_then_a_read(sim: Simulator, ttl: CacheTTL) -> None:
    provider = AnthropicProvider(base_url=sim.base_url(f"acct-{ttl}"), api_key="k", timeout_s=10)
    total = count_input_tokens(MESSAGES, PREFIX + "\nBe terse.")
    prefix = count_tokens(PREFIX)
    first = provider.call(_request(ttl=ttl))
    assert (first.cache_creation_input_tokens, first.cache_read_input_tokens) == (prefix, 0)
    assert first.cache_creation_1h_input_tokens == (prefix if ttl == "1h" else 0)
    assert first.input_tokens == total - prefix
    second = provider.call(_request(ttl=ttl))
    assert (second.cache_creation_input_tokens, second.cache_read_input_tokens) == (0, prefix)
    assert second.cache_creation_1h_input_tokens == 0
    assert second.input_tokens == total - prefix
    assert second.text == first.text
    assert first.text == expected_reply(HAIKU, MESSAGES, PREFIX + "\nBe terse.", 200)
    provider.close()


def test_openai_provider_input_excludes_cached_tokens(sim: Simulator) -> None:
    provider = OpenAIProvider(base_url=sim.base_url("local") + "/v1", api_key="k", timeout_s=10)
    first = provider.call(_request(LLAMA))
    second = provider.call(_request(LLAMA))
    provider.close()
    assert first.cache_read_input_tokens == 0
    assert second.cache_read_input_tokens >= 1024
    assert second.input_tokens + second.cache_read_input_tokens == first.input_tokens
    assert second.cache_creation_input_tokens == 0
