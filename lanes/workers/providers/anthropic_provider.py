"""Anthropic Messages API through the official SDK; also Anthropic-compatible base URLs."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2

from lanes.kernel.errors import ConnectionFailed, ProviderError, ProviderTimeout
from lanes.router.content import OUTPUT_TOOL
from lanes.workers.providers.base import ProviderRequest, ProviderResponse, TextSink
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
        params = anthropic_params(request)
        started = time.perf_counter()
        with self._translated(request):
            raw = self._client().messages.with_raw_response.create(
                **params, timeout=request.timeout_s
            )
            message = raw.parse()
        latency_s = time.perf_counter() - started
        return message_response(
            message, latency_s, raw.headers.get("request-id"), rate_limit_headers(raw.headers)
        )

    def stream(self, request: ProviderRequest, on_text: TextSink) -> ProviderResponse:
        params = anthropic_params(request)
        started = time.perf_counter()
        with (
            self._translated(request),
            self._client().messages.stream(**params, timeout=request.timeout_s) as stream,
        ):
            for text in stream.text_stream:
                on_text(text)
            message = stream.get_final_message()
            headers = stream.response.headers
        latency_s = time.perf_counter() - started
        return message_response(
            message, latency_s, headers.get("request-id"), rate_limit_headers(headers)
        )

    def _client(self) -> anthropic.Anthropic:
        return self._clients[next(self._turn) % len(self._clients)]

    @contextlib.contextmanager
    def _translated(self, request: ProviderRequest) -> Iterator[None]:
        """Vendor errors as lanes' own. Errors carrying provider text are raised ``from
        None``: the vendor exception they replace may quote the key, and a logged traceback
        would show it."""
        try:
            yield
        except anthropic.APIStatusError as exc:
            raise status_error(exc, self._scrub) from None
        except anthropic.APITimeoutError as exc:
            raise ProviderTimeout(f"no answer within {request.timeout_s}s") from exc
        except (anthropic.APIConnectionError, httpx2.TransportError) as exc:
            raise ConnectionFailed(self._scrub(f"connection failed: {exc}")) from None

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
    system = _system(request)
    if system:
        params["system"] = system
    options = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "stop_sequences": request.stop_sequences,
        "tools": request.tools,
        "tool_choice": request.tool_choice,
    }
    params.update((key, value) for key, value in options.items() if value is not None)
    if request.output_schema is not None:
        params["tools"] = [output_tool(request.output_schema)]
        params["tool_choice"] = {"type": "tool", "name": OUTPUT_TOOL}
    return params


def output_tool(schema: dict[str, Any]) -> dict[str, Any]:
    """The tool an Anthropic model is made to call to answer in ``schema``'s JSON."""
    return {
        "name": OUTPUT_TOOL,
        "description": "Give your whole answer as this tool's input.",
        "input_schema": schema,
    }


def _system(request: ProviderRequest) -> str | list[dict[str, Any]] | None:
    """The system prompt: a cacheable prefix block first when there is one."""
    if not request.cache_prefix:
        return request.system or None
    blocks: list[dict[str, Any]] = [
        {
            "type": "text",
            "text": request.cache_prefix,
            "cache_control": {"type": "ephemeral", "ttl": request.cache_ttl},
        }
    ]
    if isinstance(request.system, list):
        blocks.extend(request.system)
    elif request.system:
        blocks.append({"type": "text", "text": request.system})
    return blocks


def message_response(
    message: anthropic.types.Message,
    latency_s: float,
    request_id: str | None,
    limit_headers: dict[str, str] | None = None,
) -> ProviderResponse:
    """A Messages API answer (a call's, or a batch result's) as lanes reads it."""
    usage = message.usage
    split = usage.cache_creation
    content = [_block(block) for block in message.content]
    return ProviderResponse(
        text="".join(block.get("text", "") for block in content),
        content=[block for block in content if block],
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


def _block(block: Any) -> dict[str, Any]:
    """A text or tool_use block as a plain dict; ``{}`` for any other kind (thinking)."""
    if block.type == "text":
        return {"type": "text", "text": block.text}
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return {}


def status_error(exc: anthropic.APIStatusError, scrub: Scrubber) -> ProviderError:
    message = exc.message
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = str(body["error"].get("message", message))
    return error_for_status(exc.status_code, message, exc.response.headers, scrub)
