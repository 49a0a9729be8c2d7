"""``lanes status``: each lane's limits, usage now, cooldown, health, queue depth and workers."""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery

from broker.keys import Keys
from broker.lane_state import RedisLaneState
from kernel.config import Config
from kernel.errors import InfrastructureError
from workers.capacity import ALL_MODELS
from workers.ratelimit import RedisLimiter


def lane_status(config: Config, client: redis.Redis, app: Celery) -> list[dict[str, Any]]:
    """One row per lane, read from Redis and the workers (1 s to hear from workers)."""
    keys = Keys(config.redis_prefix)
    states = RedisLaneState(client, keys).statuses(config.lanes())
    limiter = RedisLimiter(client, keys)
    consumers = _consumers(app)
    rows = []
    for lane, spec in config.instances.items():
        state = states[lane]
        try:
            depth = int(client.llen(lane))
        except redis.RedisError as exc:
            raise InfrastructureError(f"cannot read queue {lane}: {exc}") from exc
        rows.append(
            {
                "lane": lane,
                "enabled": spec.enabled,
                "limits": spec.limits.model_dump(),
                "available_now": dict(limiter.usage(lane, ALL_MODELS, spec.limits)),
                "cooldown_s": round(state.cooldown_s, 3),
                "disabled": state.disabled_reason,
                "health": round(state.health, 3),
                "queue_depth": depth,
                "workers": sorted(consumers.get(lane, [])),
            }
        )
    return rows


def _consumers(app: Celery) -> dict[str, list[str]]:
    replies = app.control.inspect(timeout=1.0).active_queues() or {}
    found: dict[str, list[str]] = {}
    for worker, queues in replies.items():
        for queue in queues:
            found.setdefault(queue["name"], []).append(worker)
    return found
