"""A provider that answers from a function, in process: no HTTP, no simulator.

Like httpx's ``MockTransport``: give it a handler that takes the
:class:`~lanes.workers.providers.base.ProviderRequest` and returns a
:class:`~lanes.workers.providers.base.ProviderResponse`, or raises a
:class:`lanes.kernel.errors.ProviderError` (``RateLimited(retry_after_s=2)``, ``Overloaded``...)
the way a real provider's errors arrive after translation. Every request is kept in
``requests``. For unit tests of the worker (:func:`lanes.workers.runner.run_step` with
:func:`lanes.stores.memory.memory_stores`); real deployments never use it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from lanes.kernel.config import Config
from lanes.workers.providers.base import Provider, ProviderRequest, ProviderResponse, TextSink

Handler = Callable[[ProviderRequest], ProviderResponse]


def echo(request: ProviderRequest) -> ProviderResponse:
    """A handler that answers with the last message, counting words as tokens."""
    content = request.messages[-1]["content"] if request.messages else ""
    if not isinstance(content, str):
        content = " ".join(str(block.get("text", "")) for block in content)
    text = str(content)
    return ProviderResponse(
        text=f"echo: {text}",
        input_tokens=max(1, len(text.split())),
        output_tokens=min(request.max_tokens, max(1, len(text.split()) + 1)),
        stop_reason="end_turn",
        latency_s=0.0,
    )


class FakeProvider:
    def __init__(self, handler: Handler = echo) -> None:
        self._handler = handler
        self._lock = threading.Lock()
        self.requests: list[ProviderRequest] = []
        self.closed = False

    def stream(self, request: ProviderRequest, on_text: TextSink) -> ProviderResponse:
        """The handler's answer, its text told in two halves."""
        response = self.call(request)
        half = len(response.text) // 2
        for piece in (response.text[:half], response.text[half:]):
            if piece:
                on_text(piece)
        return response

    def call(self, request: ProviderRequest) -> ProviderResponse:
        with self._lock:
            self.requests.append(request)
        return self._handler(request)

    def close(self) -> None:
        self.closed = True


class FakeProviders:
    """A provider factory for :class:`~lanes.workers.context.WorkerContext`: one
    :class:`FakeProvider` per instance, each with the handler given for it (else ``default``)."""

    def __init__(self, handlers: dict[str, Handler] | None = None, default: Handler = echo):
        self._handlers = dict(handlers or {})
        self._default = default
        self.built: dict[str, FakeProvider] = {}

    def __call__(self, config: Config, instance: str) -> Provider:
        provider = FakeProvider(self._handlers.get(instance, self._default))
        self.built[instance] = provider
        return provider
