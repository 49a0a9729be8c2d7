"""The provider interface: one method, ``call``. Implementations translate vendor errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

CacheTTL = Literal["5m", "1h"]


@dataclass(frozen=True)
class ProviderRequest:
    model: str
    messages: list[dict[str, str]]
    max_tokens: int
    system: str | None = None
    temperature: float | None = None
    timeout_s: float = 600.0
    cache_prefix: str | None = None
    """Text sent ahead of ``system`` and marked cacheable: the first system block with
    ``cache_control`` on Anthropic lanes, the start of the system message elsewhere."""
    cache_ttl: CacheTTL = "5m"


@dataclass(frozen=True)
class ProviderResponse:
    text: str
    input_tokens: int
    """The input neither read from nor written to the prompt cache: with the two cache
    counts it adds up to the whole prompt, so each token is priced once."""
    output_tokens: int
    stop_reason: str
    latency_s: float
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    """Every cache write, whatever its TTL (as the API reports it)."""
    cache_creation_1h_input_tokens: int = 0
    """The part of ``cache_creation_input_tokens`` written with the 1-hour TTL."""
    request_id: str | None = None
    rate_limit_headers: dict[str, str] = field(default_factory=dict)
    """The provider's ``anthropic-ratelimit-*`` / ``x-ratelimit-*`` headers, as sent."""

    def usage(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_creation_1h_input_tokens": self.cache_creation_1h_input_tokens,
        }


class Provider(Protocol):
    """Calls one model on one account. Raises only :class:`lanes.kernel.errors.ProviderError`s."""

    def call(self, request: ProviderRequest) -> ProviderResponse: ...

    def close(self) -> None: ...
