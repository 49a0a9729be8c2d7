"""The benchmark's worker app: ``celery -A lanes.bench.celery_app worker -Q
claude1,...,lanes-bench``.

The product's worker app (:mod:`lanes.workers.celery_app`: config from ``$LANES_CONFIG``, Redis,
``lanes.run``) plus the queue and tasks ``lanes bench throughput`` compares lanes with; the
product itself declares neither.

- ``bench.noop(value)``: returns ``value``; the floor of a Celery round trip.
- ``bench.sdk_call(instance, model, prompt, max_tokens)``: what a user writes without lanes:
  a plain Celery task making the same provider call to the same endpoint, with the official
  ``anthropic`` SDK for an Anthropic-protocol instance and an ``httpx`` POST to
  ``/chat/completions`` for an OpenAI-protocol one. One client per instance per worker
  process, built on first use and reused (by every thread of a threads pool).
"""

from __future__ import annotations

import threading
from typing import Any

import anthropic
import httpx

from lanes.bench.harness import BENCH_QUEUE, NOOP_TASK, SDK_TASK, add_bench_queue
from lanes.kernel.config import ProviderKind
from lanes.workers.celery_app import app, config
from lanes.workers.providers import endpoint

__all__ = ["app"]

add_bench_queue(app)

_clients: dict[str, anthropic.Anthropic | httpx.Client] = {}
_clients_lock = threading.Lock()


@app.task(name=NOOP_TASK, queue=BENCH_QUEUE)
def noop(value: int = 0) -> int:
    return value


@app.task(name=SDK_TASK, queue=BENCH_QUEUE)
def sdk_call(instance: str, model: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    """One provider call on ``instance``/``model``; its text and token counts."""
    client = _client(instance)
    if isinstance(client, anthropic.Anthropic):
        return _anthropic_call(client, model, prompt, max_tokens)
    return _openai_call(client, model, prompt, max_tokens)


def _client(instance: str) -> anthropic.Anthropic | httpx.Client:
    with _clients_lock:
        if instance not in _clients:
            _clients[instance] = _new_client(instance)
        return _clients[instance]


def _new_client(instance: str) -> anthropic.Anthropic | httpx.Client:
    """A client for ``instance``'s endpoint (real or simulated), as lanes' providers build."""
    spec = config.instances[instance]
    base_url, api_key = endpoint(config, instance)
    if spec.provider is ProviderKind.ANTHROPIC:
        return anthropic.Anthropic(
            base_url=base_url, api_key=api_key or "", max_retries=0, timeout=spec.timeout_s
        )
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(
        base_url=base_url,
        headers=headers,
        timeout=spec.timeout_s,
        limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
    )


def _anthropic_call(
    client: anthropic.Anthropic, model: str, prompt: str, max_tokens: int
) -> dict[str, Any]:
    message = client.messages.create(
        model=model, max_tokens=max_tokens, messages=[{"role": "user", "content": prompt}]
    )
    return {
        "text": "".join(getattr(block, "text", "") for block in message.content),
        "input_tokens": message.usage.input_tokens,
        "output_tokens": message.usage.output_tokens,
    }


def _openai_call(client: httpx.Client, model: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    body = {
        "model": model,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": prompt}],
    }
    response = client.post("/chat/completions", json=body)
    response.raise_for_status()
    data = response.json()
    usage = data.get("usage") or {}
    return {
        "text": data["choices"][0]["message"].get("content") or "",
        "input_tokens": int(usage.get("prompt_tokens", 0)),
        "output_tokens": int(usage.get("completion_tokens", 0)),
    }
