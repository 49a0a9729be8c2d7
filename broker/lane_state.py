"""Live lane state in Redis: cooldowns, disabled instances and a health score.

:class:`RedisLaneState` implements :class:`router.lane_state.LaneStateReader` for the router and
adds the writers the workers call after each provider call. :class:`MemoryLaneState` is the
in-process twin with an injectable clock, for tests and routing without Redis.

* **Cooldown** (``Keys.cooldown``): a string whose PX TTL is the cooldown left, value the reason.
  :meth:`~RedisLaneState.cool_down` never shortens a longer cooldown (``cool_down.lua``).
* **Disabled** (``Keys.disabled``): a string without TTL, value the reason, until ``enable``.
* **Health** (``Keys.health``): decayed weights of recent successes and failures. Each outcome
  weighs 1 when recorded and halves every ``health_half_life_s`` (server TIME);
  ``health = (ok + prior) / (ok + fail + prior)`` with a prior of :data:`HEALTH_PRIOR` successes,
  so no data means 1.0, failures pull it toward 0, and it recovers with successes or, with no
  traffic at all, as old failures fade.

Redis errors surface as :class:`kernel.errors.InfrastructureError`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import redis

from broker.keys import Keys
from broker.scripts import LaneStateScripts, queue_script, redis_errors, server_time_s, text
from router.lane_state import LaneStateReader, LaneStatus

HEALTH_HALF_LIFE_S = 300.0
"""Default time after which a recorded outcome weighs half as much."""
HEALTH_PRIOR = 1.0
"""Pseudo-successes in the health ratio: one failure on a fresh instance gives 0.5."""
_HEALTH_TTL_HALF_LIVES = 20


def health_score(ok_weight: float, fail_weight: float) -> float:
    """Health in [0, 1] from decayed success and failure weights."""
    return (ok_weight + HEALTH_PRIOR) / (ok_weight + fail_weight + HEALTH_PRIOR)


def decay_factor(elapsed_s: float, half_life_s: float) -> float:
    """How much a weight recorded ``elapsed_s`` seconds ago still counts (1 at 0 s)."""
    return float(0.5 ** (max(0.0, elapsed_s) / half_life_s))


class LaneStateStore(LaneStateReader, Protocol):
    """A lane state the workers can also write."""

    def cool_down(self, instance: str, seconds: float, reason: str) -> float:
        """Cool the instance down for ``seconds`` unless a longer cooldown runs; returns the
        cooldown left (s). ``seconds <= 0`` changes nothing."""
        ...

    def disable(self, instance: str, reason: str) -> None: ...

    def enable(self, instance: str) -> None: ...

    def record_success(self, instance: str) -> float:
        """Record a successful call; returns the new health."""
        ...

    def record_failure(self, instance: str, kind: str) -> float:
        """Record a failed call of ``kind`` (e.g. ``"timeout"``); returns the new health."""
        ...

    def clear(self, instance: str) -> None:
        """Forget cooldown, disabled flag and health of the instance."""
        ...


class RedisLaneState:
    """:class:`LaneStateStore` in Redis, shared by every process using the same ``keys``."""

    def __init__(
        self, client: redis.Redis, keys: Keys, *, health_half_life_s: float = HEALTH_HALF_LIFE_S
    ) -> None:
        if not health_half_life_s > 0:
            raise ValueError(f"health_half_life_s must be > 0, got {health_half_life_s}")
        self._client = client
        self._keys = keys
        self._half_life_s = health_half_life_s
        self._scripts = LaneStateScripts.register(client)

    def status(self, instance: str) -> LaneStatus:
        """One instance's state, in one round trip."""
        return self.statuses([instance])[instance]

    def statuses(self, instances: list[str]) -> dict[str, LaneStatus]:
        """The state of each instance, in one pipelined round trip (with the server TIME)."""
        with redis_errors("reading lane state"):
            pipe = self._client.pipeline(transaction=False)
            parse = self.statuses_in(pipe, instances)
            return parse(pipe.execute())

    def statuses_in(
        self, pipe: redis.client.Pipeline, instances: list[str]
    ) -> Callable[[list[Any]], dict[str, LaneStatus]]:
        """Queue the reads of :meth:`statuses` on ``pipe``; return the parser of the replies
        from the first one queued here to the end."""
        names = list(dict.fromkeys(instances))
        pipe.time()
        for name in names:
            pipe.get(self._keys.disabled(name))
            pipe.pttl(self._keys.cooldown(name))
            pipe.hmget(self._keys.health(name), ["ok", "fail", "ts_ms"])
        return lambda replies: self._parse_statuses(names, replies)

    def _parse_statuses(self, names: list[str], replies: list[Any]) -> dict[str, LaneStatus]:
        seconds, micros = replies[0]
        now_ms = server_time_s(seconds, micros) * 1000
        out: dict[str, LaneStatus] = {}
        for i, name in enumerate(names):
            disabled, pttl_ms, health = replies[1 + 3 * i : 4 + 3 * i]
            out[name] = LaneStatus(
                disabled_reason=None if disabled is None else text(disabled),
                cooldown_s=max(0, int(pttl_ms)) / 1000,
                health=self._health(health, now_ms),
            )
        return out

    def _health(self, fields: list[object], now_ms: float) -> float:
        ok_raw, fail_raw, ts_raw = fields
        if ts_raw is None:
            return 1.0
        factor = decay_factor((now_ms - float(text(ts_raw))) / 1000, self._half_life_s)
        ok = float(text(ok_raw or 0)) * factor
        fail = float(text(fail_raw or 0)) * factor
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

    def record_success(self, instance: str) -> float:
        return self._record(instance, "ok", "")

    def record_failure(self, instance: str, kind: str) -> float:
        return self._record(instance, "fail", kind)

    def record_success_in(self, pipe: redis.client.Pipeline, instance: str) -> None:
        """Queue :meth:`record_success` on ``pipe``."""
        keys, args = self._record_call(instance, "ok", "")
        queue_script(pipe, self._scripts.health, keys, args)

    def _record(self, instance: str, outcome: str, kind: str) -> float:
        keys, args = self._record_call(instance, outcome, kind)
        with redis_errors(f"recording an outcome of {instance}"):
            health = self._scripts.health(keys=keys, args=args)
        return float(text(health))

    def _record_call(
        self, instance: str, outcome: str, kind: str
    ) -> tuple[list[str], list[str | int | float]]:
        half_life_ms = math.ceil(self._half_life_s * 1000)
        return [self._keys.health(instance)], [outcome, half_life_ms, kind, HEALTH_PRIOR]

    def clear(self, instance: str) -> None:
        keys = self._keys
        with redis_errors(f"clearing the state of {instance}"):
            self._client.delete(
                keys.cooldown(instance), keys.disabled(instance), keys.health(instance)
            )


@dataclass
class _Health:
    ok: float = 0.0
    fail: float = 0.0
    ts_s: float = 0.0
    last_failure: str = ""


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
            return LaneStatus(
                disabled_reason=self._disabled.get(instance),
                cooldown_s=max(0.0, until_s - now_s),
                health=self._health_at(instance, now_s),
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

    def record_success(self, instance: str) -> float:
        return self._record(instance, ok=True, kind="")

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


if TYPE_CHECKING:

    def _conforms(redis_state: RedisLaneState, memory_state: MemoryLaneState) -> None:
        """Lets mypy check that both stores satisfy the protocols."""
        stores: list[LaneStateStore] = [redis_state, memory_state]
        readers: list[LaneStateReader] = [redis_state, memory_state]
        del stores, readers
