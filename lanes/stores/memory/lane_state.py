"""Lane state in dicts (:class:`lanes.stores.lane_state.LaneStateStore`), with the same
semantics as the Redis store: for tests and one process without Redis."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lanes.router.lane_state import LaneStatus
from lanes.stores.lane_state import (
    HEALTH_HALF_LIFE_S,
    OBSERVED_WEIGHT,
    decay_factor,
    health_score,
)


@dataclass
class _Health:
    ok: float = 0.0
    fail: float = 0.0
    ts_s: float = 0.0
    last_failure: str = ""
    latency_s: float | None = None
    output_tokens: float | None = None
    model_latency_s: dict[str, float] = field(default_factory=dict)


class MemoryLaneState:
    """:class:`LaneStateStore` in dicts, same semantics as :class:`RedisLaneState`.

    ``clock`` returns seconds and must not go backwards. Thread-safe; one process only.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        health_half_life_s: float = HEALTH_HALF_LIFE_S,
    ) -> None:
        if not health_half_life_s > 0:
            raise ValueError(f"health_half_life_s must be > 0, got {health_half_life_s}")
        self._clock = clock
        self._half_life_s = health_half_life_s
        self._lock = threading.Lock()
        self._cooldowns: dict[str, tuple[float, str]] = {}
        self._disabled: dict[str, str] = {}
        self._health: dict[str, _Health] = {}

    def status(self, instance: str) -> LaneStatus:
        with self._lock:
            now_s = self._clock()
            until_s, _ = self._cooldowns.get(instance, (now_s, ""))
            record = self._health.get(instance)
            return LaneStatus(
                disabled_reason=self._disabled.get(instance),
                cooldown_s=max(0.0, until_s - now_s),
                health=self._health_at(instance, now_s),
                latency_s=None if record is None else record.latency_s,
                model_latency_s={} if record is None else dict(record.model_latency_s),
                output_tokens=None if record is None else record.output_tokens,
            )

    def statuses(self, instances: list[str]) -> dict[str, LaneStatus]:
        return {name: self.status(name) for name in instances}

    def _health_at(self, instance: str, now_s: float) -> float:
        record = self._health.get(instance)
        if record is None:
            return 1.0
        factor = decay_factor(now_s - record.ts_s, self._half_life_s)
        return health_score(record.ok * factor, record.fail * factor)

    def cool_down(self, instance: str, seconds: float, reason: str) -> float:
        with self._lock:
            now_s = self._clock()
            until_s, _ = self._cooldowns.get(instance, (now_s, ""))
            if seconds > 0 and until_s - now_s < seconds:
                until_s = now_s + math.ceil(seconds * 1000) / 1000
                self._cooldowns[instance] = (until_s, reason)
            return max(0.0, until_s - now_s)

    def disable(self, instance: str, reason: str) -> None:
        with self._lock:
            self._disabled[instance] = reason

    def enable(self, instance: str) -> None:
        with self._lock:
            self._disabled.pop(instance, None)

    def record_success(
        self,
        instance: str,
        latency_s: float | None = None,
        output_tokens: int | None = None,
        model: str | None = None,
    ) -> float:
        health = self._record(instance, ok=True, kind="")
        with self._lock:
            record = self._health[instance]
            record.latency_s = _moved(record.latency_s, latency_s)
            record.output_tokens = _moved(record.output_tokens, output_tokens)
            if model and latency_s is not None:
                mean = _moved(record.model_latency_s.get(model), latency_s)
                record.model_latency_s[model] = latency_s if mean is None else mean
        return health

    def record_failure(self, instance: str, kind: str) -> float:
        return self._record(instance, ok=False, kind=kind)

    def _record(self, instance: str, *, ok: bool, kind: str) -> float:
        with self._lock:
            now_s = self._clock()
            record = self._health.setdefault(instance, _Health(ts_s=now_s))
            factor = decay_factor(now_s - record.ts_s, self._half_life_s)
            record.ok, record.fail, record.ts_s = record.ok * factor, record.fail * factor, now_s
            if ok:
                record.ok += 1
            else:
                record.fail += 1
                record.last_failure = kind
            return health_score(record.ok, record.fail)

    def clear(self, instance: str) -> None:
        with self._lock:
            self._cooldowns.pop(instance, None)
            self._disabled.pop(instance, None)
            self._health.pop(instance, None)


def _moved(mean: float | None, seen: float | None) -> float | None:
    """``mean`` with ``seen`` folded in (the health script's moving mean)."""
    if seen is None:
        return mean
    return float(seen) if mean is None else mean + OBSERVED_WEIGHT * (seen - mean)
