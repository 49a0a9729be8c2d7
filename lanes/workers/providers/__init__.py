"""Providers: how a worker talks to one instance. ``build_provider`` picks the right one,
``build_batch_provider`` the right batch client."""

from __future__ import annotations

from lanes.kernel.config import Config, ProviderKind, SimMode
from lanes.workers.providers.anthropic_batches import AnthropicBatchProvider
from lanes.workers.providers.anthropic_provider import AnthropicProvider
from lanes.workers.providers.base import Provider, ProviderRequest, ProviderResponse
from lanes.workers.providers.batch_api import BatchItem, BatchOutcome, BatchProvider, BatchStatus
from lanes.workers.providers.openai_batches import OpenAIBatchProvider
from lanes.workers.providers.openai_provider import OpenAIProvider
from lanes.workers.providers.scrub import Scrubber

SIM_API_KEY = "sim-local-key"

__all__ = [
    "AnthropicBatchProvider",
    "AnthropicProvider",
    "BatchItem",
    "BatchOutcome",
    "BatchProvider",
    "BatchStatus",
    "OpenAIBatchProvider",
    "OpenAIProvider",
    "Provider",
    "ProviderRequest",
    "ProviderResponse",
    "build_batch_provider",
    "build_provider",
    "endpoint",
    "is_simulated",
]


def is_simulated(config: Config, instance: str) -> bool:
    """True when ``instance`` talks to the local simulator instead of its real provider."""
    mode = config.simulator.mode
    if mode is SimMode.ALWAYS:
        return True
    if mode is SimMode.NEVER:
        return False
    spec = config.instances[instance]
    return spec.api_key_env is not None and spec.api_key() is None


def endpoint(config: Config, instance: str) -> tuple[str, str | None]:
    """(base URL, API key) the worker uses for ``instance``: real, or the simulator's."""
    spec = config.instances[instance]
    if is_simulated(config, instance):
        base = config.simulator.base_url(instance)
        if spec.provider is not ProviderKind.ANTHROPIC:
            base += "/v1"
        return base, SIM_API_KEY
    key = spec.api_key()
    return spec.base_url, key.get_secret_value() if key else None


def build_provider(config: Config, instance: str) -> Provider:
    spec = config.instances[instance]
    base_url, api_key = endpoint(config, instance)
    scrub = Scrubber.from_config(config)
    connections = connections_for(config, instance)
    if spec.provider is ProviderKind.ANTHROPIC:
        return AnthropicProvider(base_url=base_url, api_key=api_key or "",
                                 timeout_s=spec.timeout_s, scrub=scrub,
                                 connections=connections)  # fmt: skip
    return OpenAIProvider(base_url=base_url, api_key=api_key, timeout_s=spec.timeout_s,
                          scrub=scrub, connections=connections)  # fmt: skip


def connections_for(config: Config, instance: str) -> int:
    """Connections one worker process may hold open to ``instance``: as many as it runs
    calls at once (the lane's own worker concurrency, else the config's), 64 at least."""
    own = config.instances[instance].worker
    return max(64, (own or config.worker).concurrency)


def build_batch_provider(config: Config, instance: str) -> BatchProvider:
    """The batch client of ``instance``, at the same endpoint and with the same key as
    :func:`build_provider`'s. It fails on its first call where the endpoint has no batch
    API (most OpenAI-compatible proxies and local servers)."""
    spec = config.instances[instance]
    base_url, api_key = endpoint(config, instance)
    scrub = Scrubber.from_config(config)
    if spec.provider is ProviderKind.ANTHROPIC:
        return AnthropicBatchProvider(
            base_url=base_url, api_key=api_key or "", timeout_s=spec.timeout_s, scrub=scrub
        )
    return OpenAIBatchProvider(
        base_url=base_url, api_key=api_key, timeout_s=spec.timeout_s, scrub=scrub
    )
