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
    usage = response.usage()
    return Result(
        **_where(env),
        status="ok",
        text=response.text,
        stop_reason=response.stop_reason,
        usage=usage,
        input_tokens=response.input_tokens,
        output_tokens=response.output_tokens,
        cost_usd=config.price_usd(env.instance, env.model, usage),
        latency_s=response.latency_s,
        simulated=is_simulated(config, env.instance),
    )


def failure_result(env: Envelope, reason: str) -> Result:
    return Result(**_where(env), status="failed", error=reason)
