"""The one result a caller gets: a plain JSON dict, success or failure."""

from __future__ import annotations

import socket
import time
from typing import Any

from broker.message import Envelope
from kernel.config import Config
from workers.providers import ProviderResponse, is_simulated


def _base(env: Envelope) -> dict[str, Any]:
    return {
        "job_id": env.job.id,
        "instance": env.instance,
        "model": env.model,
        "step": env.step,
        "attempt": env.attempt,
        "fallbacks": [f.model_dump() for f in env.fallbacks],
        "waited_s": env.waited_s,
        "project": env.job.project,
        "user": env.job.user,
        "worker": socket.gethostname(),
        "finished_at": time.time(),
    }


def success_record(config: Config, env: Envelope, response: ProviderResponse) -> dict[str, Any]:
    usage = response.usage()
    return {
        **_base(env),
        "status": "ok",
        "text": response.text,
        "stop_reason": response.stop_reason,
        "usage": usage,
        "input_tokens": response.input_tokens,
        "output_tokens": response.output_tokens,
        "cost_usd": config.price_usd(env.instance, env.model, usage),
        "latency_s": response.latency_s,
        "simulated": is_simulated(config, env.instance),
        "error": None,
    }


def failure_record(env: Envelope, reason: str) -> dict[str, Any]:
    return {
        **_base(env),
        "status": "failed",
        "text": "",
        "usage": {},
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
        "latency_s": 0.0,
        "error": reason,
    }
