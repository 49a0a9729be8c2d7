"""The provider interface: one method, ``call``. Implementations translate vendor errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ProviderRequest:
    model: str
    messages: list[dict[str, str]]
    max_tokens: int
    system: str | None = None
    temperature: float | None = None
    timeout_s: float = 600.0


@dataclass(frozen=True)
class ProviderResponse:
    text: str
    input_tokens: int
    output_tokens: int
    stop_reason: str
    latency_s: float
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    request_id: str | None = None
    rate_limit_headers: dict[str, str] = field(default_factory=dict)
    """The provider's ``anthropic-ratelimit-*`` / ``x-ratelimit-*`` headers, as sent."""

    def usage(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
        }


class Provider(Protocol):
    """Calls one model on one account. Raises only :class:`lanes.kernel.errors.ProviderError`s."""

    def call(self, request: ProviderRequest) -> ProviderResponse: ...

    def close(self) -> None: ...
