"""``lanes status``: each lane's limits, usage now, cooldown, health, queue depth, backlog (every
unfinished job whose next message is on the lane, queued or waiting in a worker) with the time
to drain it, and workers.

Limits are shown as configured (no ``limit_margin``), per model class: the instance-wide
``limits`` that every model without its own shares, and one entry per model in
``model_limits``, read from the same (instance, model class) buckets the workers reserve in.
"""

from __future__ import annotations

import time
from typing import Any

from celery import Celery

from lanes.deployment import Deployment
from lanes.kernel.config import Config, InstanceSpec
from lanes.kernel.config.models import ALL_MODELS
from lanes.router.lane_state import LaneStatus
from lanes.router.load import backlog_s, lane_drain
from lanes.stores.batches import OpenBatch
from lanes.stores.limiter import RateLimiter
from lanes.workers.services.ledger_health import ledger_health, stale_after_s
from lanes.workers.services.liveness import liveness


def lane_status(deployment: Deployment) -> list[dict[str, Any]]:
    """One row per lane, read from Redis and the workers (1 s to hear from workers).

    ``available_now`` holds tokens available now per bucket (None: unlimited; may be negative
    after a call used more than it reserved). ``model_limits`` maps each model with limits of
    its own to ``{"limits", "available_now"}`` of its buckets; it is empty when the lane has
    none.
    """
    config, client, keys = deployment.config, deployment.redis, deployment.keys
    states = deployment.stores.lane_state.statuses(config.lanes())
    limiter = deployment.stores.limiter
    consumers_by_queue = consumers(deployment.app)
    alive = liveness(client, keys, config.lanes(), config.liveness.timeout_s)
    depths = deployment.queue_depths(config.lanes())
    rows = []
    for lane, spec in config.instances.items():
        state = states[lane]
        rows.append(
            {
                "lane": lane,
                "enabled": spec.enabled,
                "limits": spec.limits.model_dump(),
                "available_now": dict(limiter.usage(lane, ALL_MODELS, spec.limits)),
                "cooldown_s": round(state.cooldown_s, 3),
                "disabled": state.disabled_reason,
                "health": round(state.health, 3),
                "queue_depth": depths[lane],
                "backlog": state.backlog,
                "drain_s": drain_s(config, lane, state),
                "workers": sorted(consumers_by_queue.get(lane, [])),
                "consuming": alive[lane].consuming,
                "liveness": alive[lane].detail,
                "model_limits": _model_rows(limiter, lane, spec),
            }
        )
    return rows


TYPICAL_JOB_TOKENS = (1000, 500)
"""(input, output) tokens of the job :func:`drain_s` assumes."""


def drain_s(config: Config, lane: str, state: LaneStatus) -> float | None:
    """Seconds the lane needs to start its backlog at the rate its limits allow, for its
    calls' measured latency and output, else jobs of :data:`TYPICAL_JOB_TOKENS` (None: its
    limits set no bound)."""
    seconds = backlog_s(lane_drain(config, lane, state, *TYPICAL_JOB_TOKENS), state.backlog)
    return None if seconds is None else round(seconds, 1)


def ledger_status(deployment: Deployment) -> dict[str, Any] | None:
    """The ledger's drainers: those running, events waiting, failures and replacements, with
    a verdict (``status``, ``detail``, ``fix``); None with ``ledger.enabled`` false."""
    config = deployment.config
    if not config.ledger.enabled:
        return None
    stale_s = stale_after_s(config.ledger.flush_interval_s)
    return ledger_health(deployment.redis, deployment.keys, stale_s).to_json()


def batch_status(deployment: Deployment) -> dict[str, Any]:
    """The provider batches: those open (lane, model, provider id, jobs, age) and the jobs
    parked on each lane and model, gathering for the next one."""
    store = deployment.stores.batches
    now = time.time()
    opened = [_open_row(batch, now) for batch in store.open_batches()]
    config = deployment.config
    lanes = [(name, model) for name, spec in config.instances.items() if spec.batch is not None
             for model in spec.models]  # fmt: skip
    gathering = {
        f"{name}/{model}": waiting
        for (name, model), waiting in zip(lanes, store.waiting(lanes), strict=True)
        if waiting
    }
    return {"open": opened, "gathering": gathering}


def _open_row(batch: OpenBatch, now: float) -> dict[str, Any]:
    return {"lane": batch.instance, "model": batch.model, "provider_id": batch.provider_id,
            "jobs": len(batch.members), "age_s": round(now - batch.created_at, 1)}  # fmt: skip


def _model_rows(limiter: RateLimiter, lane: str, spec: InstanceSpec) -> dict[str, Any]:
    """Per model with limits of its own: its limits and what its buckets hold now."""
    rows: dict[str, Any] = {}
    for model in spec.model_limits:
        model_class, limits = spec.limits_for(model)
        rows[model] = {
            "limits": limits.model_dump(),
            "available_now": dict(limiter.usage(lane, model_class, limits)),
        }
    return rows


def consumers(app: Celery) -> dict[str, list[str]]:
    """Queue name → the workers consuming it (asks every worker; takes up to 1 s)."""
    replies = app.control.inspect(timeout=1.0).active_queues() or {}
    found: dict[str, list[str]] = {}
    for worker, queues in replies.items():
        for queue in queues:
            found.setdefault(queue["name"], []).append(worker)
    return found
