"""Run one step of a job: call the step's provider, decide what happens next.

Plain functions over a :class:`WorkerContext`; the Celery task in ``workers.tasks`` only
adapts their :data:`Outcome` to Celery (return, ``retry``, ``replace``).
"""

from __future__ import annotations

import random
import socket
import time
from typing import Any

from lanes.errors import AuthFailed, ProviderError
from workers.context import WorkerContext
from workers.envelope import Envelope
from workers.outcome import Done, Forward, Outcome, Retry
from workers.providers import ProviderRequest, ProviderResponse, is_simulated
from workers.results import ResultStore


def run_step(ctx: WorkerContext, env: Envelope) -> Outcome:
    store = ResultStore(ctx.redis, ctx.keys, ctx.config.result_ttl_s)
    recorded = store.get(env.job.id)
    if recorded is not None:
        return Done(recorded)  # a redelivery of a finished job: same result, no new call
    unfit = _unfit_reason(ctx, env)
    if unfit is not None:
        return _forward_or_fail(ctx, env, unfit, store)
    try:
        response = _call(ctx, env)
    except ProviderError as exc:
        return _after_error(ctx, env, exc, store)
    return Done(store.record(env.job.id, _success(ctx, env, response)))


def _unfit_reason(ctx: WorkerContext, env: Envelope) -> str | None:
    spec = ctx.config.instances[env.instance]
    if not spec.enabled:
        return f"{env.instance} is disabled in the config"
    status = ctx.lane_state.status(env.instance)
    if status.disabled_reason:
        return f"{env.instance} is disabled: {status.disabled_reason}"
    model = ctx.config.models[env.model]
    if env.input_tokens + env.job.max_tokens > model.context_window:
        return (
            f"{env.model} context window {model.context_window} cannot fit "
            f"{env.input_tokens} input + {env.job.max_tokens} output tokens"
        )
    return None


def _call(ctx: WorkerContext, env: Envelope) -> ProviderResponse:
    job = env.job
    request = ProviderRequest(
        model=env.model,
        messages=job.as_messages(),
        max_tokens=job.max_tokens,
        system=job.system,
        temperature=job.temperature,
        timeout_s=ctx.config.instances[env.instance].timeout_s,
    )
    return ctx.provider(env.instance).call(request)


def _after_error(
    ctx: WorkerContext, env: Envelope, exc: ProviderError, store: ResultStore
) -> Outcome:
    reason = f"{type(exc).__name__} on {env.instance}/{env.model}: {exc}"
    if not exc.retryable:
        if isinstance(exc, AuthFailed):
            return _forward_or_fail(ctx, env, reason, store)
        return Done(store.record(env.job.id, _failure(env, reason)))
    if env.attempt + 1 < ctx.config.retry.attempts_per_step:
        return Retry(env.retried(), backoff_s(ctx, env.attempt))
    return _forward_or_fail(ctx, env, reason, store)


def backoff_s(ctx: WorkerContext, attempt: int) -> float:
    """Exponential backoff with full jitter: uniform(0, min(max, base * 2**attempt))."""
    spec = ctx.config.retry
    ceiling = min(spec.backoff_max_s, spec.backoff_base_s * (2**attempt))
    return random.uniform(0, ceiling)


def _forward_or_fail(
    ctx: WorkerContext, env: Envelope, reason: str, store: ResultStore
) -> Outcome:
    if env.step + 1 >= len(env.chain):
        return Done(store.record(env.job.id, _failure(env, f"chain exhausted; last: {reason}")))
    next_lane = env.chain[env.step + 1].instance
    instance = ctx.pools().expand(next_lane)
    return Forward(env.advanced(instance, reason))


def _base_result(env: Envelope) -> dict[str, Any]:
    return {
        "job_id": env.job.id,
        "instance": env.instance,
        "model": env.model,
        "step": env.step,
        "attempt": env.attempt,
        "fallbacks": [f.model_dump() for f in env.fallbacks],
        "project": env.job.project,
        "user": env.job.user,
        "worker": socket.gethostname(),
        "finished_at": time.time(),
    }


def _success(ctx: WorkerContext, env: Envelope, response: ProviderResponse) -> dict[str, Any]:
    usage = response.usage()
    return {
        **_base_result(env),
        "status": "ok",
        "text": response.text,
        "stop_reason": response.stop_reason,
        "usage": usage,
        "input_tokens": response.input_tokens,
        "output_tokens": response.output_tokens,
        "cost_usd": ctx.config.price_usd(env.instance, env.model, usage),
        "latency_s": response.latency_s,
        "simulated": is_simulated(ctx.config, env.instance),
        "error": None,
    }


def _failure(env: Envelope, reason: str) -> dict[str, Any]:
    return {
        **_base_result(env),
        "status": "failed",
        "text": "",
        "usage": {},
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
        "latency_s": 0.0,
        "error": reason,
    }
