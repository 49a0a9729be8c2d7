"""Fixtures: a simulator on a free port with a few instances, and clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import pytest

from lanes.sim import Profile, Simulator

HAIKU = "claude-haiku-4-5"
LLAMA = "llama3.1:8b"
QWEN = "qwen2.5-coder:7b"
SMALL = "claude-small"  # 1000-token context window on claude1
SONNET = "claude-sonnet-4-6"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    profiles = {
        "claude1": Profile(
            models=[SONNET, HAIKU, SMALL],
            context_windows={SMALL: 1000},
            requests_per_min=1000,
            input_tokens_per_min=1_000_000,
            output_tokens_per_min=100_000,
        ),
        "local": Profile(models=[LLAMA, QWEN]),
    }
    with Simulator(profiles=profiles, seed=0) as simulator:
        yield simulator


@pytest.fixture
def claude(sim: Simulator) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        api_key="test-key", base_url=sim.base_url("claude1"), max_retries=0
    ) as client:
        yield client


@pytest.fixture
def http(sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=10.0) as client:
        yield client
