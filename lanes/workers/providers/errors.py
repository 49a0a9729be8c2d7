"""HTTP status → lanes exception, shared by every provider."""

from __future__ import annotations

from collections.abc import Mapping

from lanes.kernel.errors import (
    AuthFailed,
    BadRequest,
    Overloaded,
    ProviderError,
    RateLimited,
    RequestTooLarge,
    ServerError,
)
from lanes.workers.providers.scrub import Scrubber


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``retry-after`` header (or ``retry-after-ms``); None if absent."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            return None  # an HTTP date: rare from LLM APIs; treat as unknown
    return None


def error_for_status(
    status: int, message: str, headers: Mapping[str, str], scrub: Scrubber
) -> ProviderError:
    """The lanes error for an HTTP error status from a provider, its text scrubbed."""
    text = scrub(f"HTTP {status}: {message}")
    sent = rate_limit_headers(headers)
    if status == 429:
        return RateLimited(text, status=status, retry_after_s=retry_after_s(headers), headers=sent)
    kind: type[ProviderError] = BadRequest
    if status in (529, 503):
        kind = Overloaded
    elif status in (401, 402, 403):
        kind = AuthFailed
    elif status == 413:
        kind = RequestTooLarge
    elif status >= 500:
        kind = ServerError
    return kind(text, status=status, headers=sent)


def rate_limit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Only the rate-limit related headers, lower-cased."""
    wanted = ("anthropic-ratelimit-", "x-ratelimit-", "retry-after")
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith(wanted)}
