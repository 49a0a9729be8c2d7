"""Building a job's :class:`~lanes.broker.result.Result` from the step it ended on."""

from __future__ import annotations

import socket
import time
from typing import Any

from lanes.broker.message import Envelope
from lanes.broker.result import Result
from lanes.kernel.config import Config
from lanes.workers.providers import ProviderResponse, is_simulated


def _where(env: Envelope) -> dict[str, Any]:
    return {
        "job_id": env.job.id,
        "instance": env.instance,
        "model": env.model,
        "step": env.step,
        "attempt": env.attempt,
        "fallbacks": env.fallbacks,
        "waited_s": env.waited_s,
        "deliveries": env.hop + 1,
        "project": env.job.project,
        "user": env.job.user,
        "worker": socket.gethostname(),
        "finished_at": time.time(),
    }


def success_result(config: Config, env: Envelope, response: ProviderResponse) -> Result:
    """``env``'s answer, priced at the batch rate when it came through the batch API."""
    usage = response.usage()
    cost_usd = config.price_usd(env.instance, env.model, usage, batch=env.batch)
    cached_usd = config.price_usd(env.instance, env.model, usage)
    plain_usd = config.price_usd(env.instance, env.model, _uncached(usage))
    return Result(
        **_where(env),
        status="ok",
        text=response.text,
        content=response.content or _text_blocks(response.text),
        stop_reason=response.stop_reason,
        usage=usage,
        input_tokens=response.input_tokens,
        output_tokens=response.output_tokens,
        cost_usd=cost_usd,
        batched=env.batch,
        batch_saved_usd=cached_usd - cost_usd,
        prompt_cache_saved_usd=plain_usd - cached_usd,
        latency_s=response.latency_s,
        simulated=is_simulated(config, env.instance),
    )


def _text_blocks(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}] if text else []


def _uncached(usage: dict[str, int]) -> dict[str, int]:
    """``usage`` as if nothing had been cached: every prompt token at the input price."""
    cached = usage.get("cache_read_input_tokens", 0) + usage.get("cache_creation_input_tokens", 0)
    return {"input_tokens": usage.get("input_tokens", 0) + cached,
            "output_tokens": usage.get("output_tokens", 0)}  # fmt: skip


def failure_result(env: Envelope, reason: str) -> Result:
    return Result(**_where(env), status="failed", error=reason)
