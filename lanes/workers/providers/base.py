"""The provider interface: one method, ``call``. Implementations translate vendor errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

CacheTTL = Literal["5m", "1h"]


@dataclass(frozen=True)
class ProviderRequest:
    model: str
    messages: list[dict[str, Any]]
    """The Messages API's turns: content a string or a list of block dicts."""
    max_tokens: int
    system: str | list[dict[str, Any]] | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop_sequences: list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    """The Messages API's tool definitions (``name``, ``description``, ``input_schema``)."""
    tool_choice: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    """The answer must be JSON matching this schema (see :mod:`lanes.workers.answers`)."""
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
    content: list[dict[str, Any]] = field(default_factory=list)
    """The answer as Messages API blocks (``text`` and ``tool_use``); empty when it is all
    in ``text``."""
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


TextSink = Callable[[str], None]
"""Told each piece of an answer's text as the provider streams it."""


class Provider(Protocol):
    """Calls one model on one account. Raises only :class:`lanes.kernel.errors.ProviderError`s."""

    def call(self, request: ProviderRequest) -> ProviderResponse: ...

    def stream(self, request: ProviderRequest, on_text: TextSink) -> ProviderResponse:
        """:meth:`call`, the answer streamed: ``on_text`` hears its text as it comes."""
        ...

    def close(self) -> None: ...
