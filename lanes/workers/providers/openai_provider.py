"""OpenAI-compatible chat completions over httpx: LiteLLM proxy, Ollama's ``/v1``, vLLM."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx

from lanes.kernel.errors import BadRequest, ConnectionFailed, ProviderTimeout
from lanes.workers.providers.base import ProviderRequest, ProviderResponse, TextSink
from lanes.workers.providers.errors import error_for_status, rate_limit_headers
from lanes.workers.providers.openai_shape import (
    answer_blocks,
    chat_messages,
    request_options,
    stop_reason,
    streamed_completion,
)
from lanes.workers.providers.scrub import NO_SECRETS, Scrubber


class OpenAIProvider:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        timeout_s: float,
        scrub: Scrubber = NO_SECRETS,
        connections: int = 256,
    ) -> None:
        self._scrub = scrub
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    def call(self, request: ProviderRequest) -> ProviderResponse:
        body = openai_body(request)
        started = time.perf_counter()
        with self._translated(request):
            resp = self._client.post("/chat/completions", json=body, timeout=request.timeout_s)
        latency_s = time.perf_counter() - started
        if resp.status_code >= 400:
            message = _error_message(resp)
            raise error_for_status(resp.status_code, message, resp.headers, self._scrub)
        return _parse(resp, latency_s, self._scrub)

    def stream(self, request: ProviderRequest, on_text: TextSink) -> ProviderResponse:
        body = {**openai_body(request), "stream": True, "stream_options": {"include_usage": True}}
        started = time.perf_counter()
        try:
            with (
                self._translated(request),
                self._client.stream(
                    "POST", "/chat/completions", json=body, timeout=request.timeout_s
                ) as resp,
            ):
                if resp.status_code >= 400:
                    resp.read()
                    message = _error_message(resp)
                    raise error_for_status(resp.status_code, message, resp.headers, self._scrub)
                data = streamed_completion(resp.iter_lines(), on_text)
                headers = resp.headers
        except (ValueError, KeyError, TypeError) as exc:
            raise BadRequest(self._scrub(f"unreadable streamed completion: {exc}")) from None
        latency_s = time.perf_counter() - started
        response = completion_response(data, latency_s, headers.get("x-request-id"))
        return replace(response, rate_limit_headers=rate_limit_headers(headers))

    @contextlib.contextmanager
    def _translated(self, request: ProviderRequest) -> Iterator[None]:
        """httpx's errors as lanes' own. Errors carrying provider text are raised ``from
        None``: the vendor exception they replace may quote the key, and a logged traceback
        would show it."""
        try:
            yield
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"no answer within {request.timeout_s}s") from exc
        except httpx.TransportError as exc:
            raise ConnectionFailed(self._scrub(f"connection failed: {exc}")) from None

    def close(self) -> None:
        self._client.close()


def openai_body(request: ProviderRequest) -> dict[str, Any]:
    """The chat completions body for ``request`` (also a batch line's ``body``); see
    :mod:`lanes.workers.providers.openai_shape`. A cache prefix opens the system message:
    these APIs cache repeated prefixes by themselves."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": chat_messages(request),
        "max_tokens": request.max_tokens,
    }
    body.update(request_options(request))
    return body


def _error_message(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:300]
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        return str(err.get("message", err))
    return str(err or data)[:300]


def _parse(resp: httpx.Response, latency_s: float, scrub: Scrubber) -> ProviderResponse:
    try:
        data = resp.json()
        response = completion_response(data, latency_s, resp.headers.get("x-request-id"))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise BadRequest(scrub(f"unreadable chat completion: {resp.text[:200]}")) from None
    return replace(response, rate_limit_headers=rate_limit_headers(resp.headers))


def completion_response(
    data: Any, latency_s: float, request_id: str | None = None
) -> ProviderResponse:
    """A chat completion body as a response (also a batch output line's ``body``); raises
    ``KeyError``, ``IndexError``, ``TypeError``, ``AttributeError`` or ``ValueError`` when
    it is not one. ``request_id`` defaults to the completion's ``id``."""
    choice = data["choices"][0]
    usage = data.get("usage") or {}
    content = answer_blocks(choice["message"])
    text = "".join(str(block.get("text", "")) for block in content)
    details = usage.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens", 0) or 0)
    # prompt_tokens includes the cached part; lanes prices each token once, so input is the rest.
    return ProviderResponse(
        text=text,
        input_tokens=int(usage.get("prompt_tokens", 0)) - cached,
        output_tokens=int(usage.get("completion_tokens", 0)),
        cache_read_input_tokens=cached,
        stop_reason=stop_reason(choice.get("finish_reason")),
        content=content,
        latency_s=latency_s,
        request_id=request_id or data.get("id"),
    )
