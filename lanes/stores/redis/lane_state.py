"""Lane state in Redis (:class:`lanes.stores.lane_state.LaneStateStore`), shared by every
process that uses the same key prefix. Redis errors surface as
:class:`lanes.kernel.errors.InfrastructureError`."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import redis

from lanes.kernel.config.models import ALL_MODELS, Limits
from lanes.router.lane_state import LaneStatus
from lanes.stores.keys import Keys
from lanes.stores.lane_state import (
    HEALTH_HALF_LIFE_S,
    HEALTH_PRIOR,
    OBSERVED_WEIGHT,
    decay_factor,
    headroom,
    health_score,
)
from lanes.stores.scripts import (
    LaneStateScripts,
    LimiterScripts,
    execute_with_scripts,
    queue_script,
    redis_errors,
    server_time_s,
    text,
)

MODEL_LATENCY = "lat_ms:"
"""Prefix of the health hash's per-model latency means (``health.lua``)."""
Observed = tuple[str, str, str]
"""(latency ms, output tokens, model) of a successful call, as ``health.lua`` reads them."""


class RedisLaneState:
    """:class:`LaneStateStore` in Redis, shared by every process using the same ``keys``."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        health_half_life_s: float = HEALTH_HALF_LIFE_S,
        limits: Mapping[str, Limits] | None = None,
    ) -> None:
        """``limits``: each instance's limits as its workers reserve them (margin applied),
        to read its headroom from the limiter's buckets (``usage.lua``); an instance without
        is not read."""
        if not health_half_life_s > 0:
            raise ValueError(f"health_half_life_s must be > 0, got {health_half_life_s}")
        self._client = client
        self._keys = keys
        self._half_life_s = health_half_life_s
        self._limits = dict(limits or {})
        self._scripts = LaneStateScripts.register(client)
        self._limiter_scripts = LimiterScripts.register(client)

    def status(self, instance: str) -> LaneStatus:
        """One instance's state, in one round trip."""
        return self.statuses([instance])[instance]

    def statuses(self, instances: list[str]) -> dict[str, LaneStatus]:
        """The state of each instance, in one pipelined round trip (with the server TIME)."""
        parsers: list[Callable[[list[Any]], dict[str, LaneStatus]]] = []
        with redis_errors("reading lane state"):
            replies = execute_with_scripts(
                self._client, lambda pipe: parsers.append(self.statuses_in(pipe, instances))
            )
        return parsers[-1](replies)

    def statuses_in(
        self, pipe: redis.client.Pipeline, instances: list[str]
    ) -> Callable[[list[Any]], dict[str, LaneStatus]]:
        """Queue the reads of :meth:`statuses` on ``pipe`` (run it with
        :func:`lanes.stores.scripts.execute_with_scripts`: an instance with limits is read with
        the limiter's ``usage.lua``); return the parser of the replies from the first one
        queued here to the end."""
        names = list(dict.fromkeys(instances))
        pipe.time()
        for name in names:
            pipe.get(self._keys.disabled(name))
            pipe.pttl(self._keys.cooldown(name))
            pipe.hgetall(self._keys.health(name))
            limits = self._limits.get(name)
            if limits is not None:
                keys = [self._keys.limiter(name, ALL_MODELS), self._keys.leases(name)]
                args: list[str | int | float] = [
                    limits.requests_per_min,
                    limits.input_tokens_per_min,
                    limits.output_tokens_per_min,
                ]
                queue_script(pipe, self._limiter_scripts.usage, keys, args)
        if names:
            pipe.hmget(self._keys.backlog(), names)
        return lambda replies: self._parse_statuses(names, replies)

    def _parse_statuses(self, names: list[str], replies: list[Any]) -> dict[str, LaneStatus]:
        read = iter(replies)
        seconds, micros = next(read)
        now_ms = server_time_s(seconds, micros) * 1000
        rows = []
        for name in names:
            disabled, pttl_ms, raw = next(read), next(read), next(read)
            usage = next(read) if name in self._limits else None
            rows.append((name, disabled, pttl_ms, raw, usage))
        backlog = next(read) if names else []
        out: dict[str, LaneStatus] = {}
        for i, (name, disabled, pttl_ms, raw, usage) in enumerate(rows):
            health = {text(k): text(v) for k, v in raw.items()}
            mean_output = _number(health.get("out_tok"))
            out[name] = LaneStatus(
                disabled_reason=None if disabled is None else text(disabled),
                cooldown_s=max(0, int(pttl_ms)) / 1000,
                health=self._health(health, now_ms),
                backlog=max(0, int(text(backlog[i]))) if backlog[i] is not None else 0,
                latency_s=_seconds(health.get("lat_ms")),
                model_latency_s={
                    key.removeprefix(MODEL_LATENCY): float(value) / 1000
                    for key, value in health.items()
                    if key.startswith(MODEL_LATENCY)
                },
                output_tokens=mean_output,
                headroom=None if usage is None else _headroom(usage, mean_output),
            )
        return out

    def _health(self, fields: Mapping[str, str], now_ms: float) -> float:
        ts_raw = fields.get("ts_ms")
        if ts_raw is None:
            return 1.0
        factor = decay_factor((now_ms - float(ts_raw)) / 1000, self._half_life_s)
        ok = float(fields.get("ok", 0)) * factor
        fail = float(fields.get("fail", 0)) * factor
        return health_score(ok, fail)

    def cool_down(self, instance: str, seconds: float, reason: str) -> float:
        """See :meth:`LaneStateStore.cool_down`. Atomic: concurrent calls keep the longest."""
        if not seconds > 0:
            return self.status(instance).cooldown_s
        ttl_ms = math.ceil(seconds * 1000)
        with redis_errors(f"cooling down {instance}"):
            left_ms = self._scripts.cool_down(
                keys=[self._keys.cooldown(instance)], args=[ttl_ms, reason]
            )
        return int(left_ms) / 1000

    def disable(self, instance: str, reason: str) -> None:
        with redis_errors(f"disabling {instance}"):
            self._client.set(self._keys.disabled(instance), reason)

    def enable(self, instance: str) -> None:
        with redis_errors(f"enabling {instance}"):
            self._client.delete(self._keys.disabled(instance))

    def record_success(
        self,
        instance: str,
        latency_s: float | None = None,
        output_tokens: int | None = None,
        model: str | None = None,
    ) -> float:
        return self._record(instance, "ok", "", _observed(latency_s, output_tokens, model))

    def record_failure(self, instance: str, kind: str) -> float:
        return self._record(instance, "fail", kind)

    def record_success_in(
        self,
        pipe: redis.client.Pipeline,
        instance: str,
        latency_s: float | None = None,
        output_tokens: int | None = None,
        model: str | None = None,
    ) -> None:
        """Queue :meth:`record_success` on ``pipe``."""
        observed = _observed(latency_s, output_tokens, model)
        keys, args = self._record_call(instance, "ok", "", observed)
        queue_script(pipe, self._scripts.health, keys, args)

    def _record(
        self, instance: str, outcome: str, kind: str, observed: Observed = ("", "", "")
    ) -> float:
        keys, args = self._record_call(instance, outcome, kind, observed)
        with redis_errors(f"recording an outcome of {instance}"):
            health = self._scripts.health(keys=keys, args=args)
        return float(text(health))

    def _record_call(
        self, instance: str, outcome: str, kind: str, observed: Observed = ("", "", "")
    ) -> tuple[list[str], list[str | int | float]]:
        half_life_ms = math.ceil(self._half_life_s * 1000)
        latency, output, model = observed
        args: list[str | int | float] = [outcome, half_life_ms, kind, HEALTH_PRIOR]
        return [self._keys.health(instance)], [*args, latency, output, OBSERVED_WEIGHT, model]

    def clear(self, instance: str) -> None:
        keys = self._keys
        with redis_errors(f"clearing the state of {instance}"):
            self._client.delete(
                keys.cooldown(instance), keys.disabled(instance), keys.health(instance)
            )


def _number(value: object) -> float | None:
    return None if value is None else float(text(value))


def _headroom(usage: list[Any], output_per_call: float | None) -> float | None:
    """:func:`headroom` from ``usage.lua``'s reply (tokens available now; '': unlimited)."""
    requests, _, output = (_number(v) if text(v) else None for v in usage[:3])
    return headroom(requests, output, output_per_call)


def _seconds(milliseconds: object) -> float | None:
    return None if milliseconds is None else float(text(milliseconds)) / 1000


def _observed(
    latency_s: float | None, output_tokens: int | None, model: str | None = None
) -> Observed:
    """A call's latency (ms), output tokens and model as the health script reads them ('':
    unknown)."""
    return (
        "" if latency_s is None else f"{latency_s * 1000:.3f}",
        "" if output_tokens is None else str(output_tokens),
        model or "",
    )
