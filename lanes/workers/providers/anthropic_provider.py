"""Anthropic Messages API through the official SDK; also Anthropic-compatible base URLs."""

from __future__ import annotations

import itertools
import time
from typing import Any

import anthropic
import httpx2

from lanes.kernel.errors import ConnectionFailed, ProviderError, ProviderTimeout
from lanes.workers.providers.base import ProviderRequest, ProviderResponse
from lanes.workers.providers.errors import error_for_status, rate_limit_headers
from lanes.workers.providers.scrub import NO_SECRETS, Scrubber

DEFAULT_CONNECTIONS = 256
CONNECTIONS_PER_CLIENT = 32
"""An HTTP client's pool looks through all its connections for each request: past a few
hundred, that search costs more than the request. A provider that may hold more calls at
once spreads them over several clients of this many connections each."""


class AnthropicProvider:
    """One account on an Anthropic(-compatible) endpoint. The SDK's retries are off:
    lanes owns the one retry loop."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout_s: float,
        scrub: Scrubber = NO_SECRETS,
        connections: int = DEFAULT_CONNECTIONS,
    ) -> None:
        """``connections``: calls this provider may hold open at once (the SDK's own
        default of 1,000 would queue the rest of a worker's calls behind them)."""
        shards = max(1, -(-connections // CONNECTIONS_PER_CLIENT))
        each = -(-connections // shards)
        limits = httpx2.Limits(max_connections=each, max_keepalive_connections=each)
        self._clients = [
            anthropic.Anthropic(
                api_key=api_key,
                base_url=base_url,
                max_retries=0,
                timeout=timeout_s,
                http_client=anthropic.DefaultHttpxClient(limits=limits, timeout=timeout_s),
            )
            for _ in range(shards)
        ]
        self._turn = itertools.count()
        self._scrub = scrub

    def call(self, request: ProviderRequest) -> ProviderResponse:
        # Errors carrying provider text are raised ``from None``: the vendor exception they
        # replace may quote the key, and a logged traceback would show it.
        params = anthropic_params(request)
        started = time.perf_counter()
        try:
            client = self._clients[next(self._turn) % len(self._clients)]
            raw = client.messages.with_raw_response.create(**params, timeout=request.timeout_s)
            message = raw.parse()
        except anthropic.APIStatusError as exc:
            raise status_error(exc, self._scrub) from None
        except anthropic.APITimeoutError as exc:
            raise ProviderTimeout(f"no answer within {request.timeout_s}s") from exc
        except anthropic.APIConnectionError as exc:
            raise ConnectionFailed(self._scrub(f"connection failed: {exc}")) from None
        latency_s = time.perf_counter() - started
        return message_response(
            message, latency_s, raw.headers.get("request-id"), rate_limit_headers(raw.headers)
        )

    def close(self) -> None:
        for client in self._clients:
            client.close()


def anthropic_params(request: ProviderRequest) -> dict[str, Any]:
    """The Messages API body for ``request`` (also a batch request's ``params``)."""
    params: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": request.messages,
    }
    if request.cache_prefix:
        blocks: list[dict[str, Any]] = [
            {
                "type": "text",
                "text": request.cache_prefix,
                "cache_control": {"type": "ephemeral", "ttl": request.cache_ttl},
            }
        ]
        if request.system:
            blocks.append({"type": "text", "text": request.system})
        params["system"] = blocks
    elif request.system:
        params["system"] = request.system
    if request.temperature is not None:
        params["temperature"] = request.temperature
    return params


def message_response(
    message: anthropic.types.Message,
    latency_s: float,
    request_id: str | None,
    limit_headers: dict[str, str] | None = None,
) -> ProviderResponse:
    """A Messages API answer (a call's, or a batch result's) as lanes reads it."""
    usage = message.usage
    split = usage.cache_creation
    return ProviderResponse(
        text="".join(getattr(block, "text", "") for block in message.content),
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_input_tokens=usage.cache_read_input_tokens or 0,
        cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
        cache_creation_1h_input_tokens=split.ephemeral_1h_input_tokens if split else 0,
        stop_reason=str(message.stop_reason or ""),
        latency_s=latency_s,
        request_id=request_id,
        rate_limit_headers=limit_headers or {},
    )


def status_error(exc: anthropic.APIStatusError, scrub: Scrubber) -> ProviderError:
    message = exc.message
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = str(body["error"].get("message", message))
    return error_for_status(exc.status_code, message, exc.response.headers, scrub)
