"""Live lane state in Redis: cooldowns, disabled instances and a health score.

The port: :class:`LaneStateStore` extends :class:`lanes.router.lane_state.LaneStateReader` (what the
router reads) with the writers the workers call after each provider call. Implementations:
:class:`lanes.stores.redis.lane_state.RedisLaneState`, shared by every process, and
:class:`lanes.stores.memory.lane_state.MemoryLaneState`, its in-process twin with an injectable
clock, for tests and routing without Redis.

* **Cooldown** (``Keys.cooldown``): a string whose PX TTL is the cooldown left, value the reason.
  ``cool_down`` never shortens a longer cooldown (``cool_down.lua``).
* **Disabled** (``Keys.disabled``): a string without TTL, value the reason, until ``enable``.
* **Health** (``Keys.health``): decayed weights of recent successes and failures. Each outcome
  weighs 1 when recorded and halves every ``health_half_life_s`` (server TIME);
  ``health = (ok + prior) / (ok + fail + prior)`` with a prior of :data:`HEALTH_PRIOR` successes,
  so no data means 1.0, failures pull it toward 0, and it recovers with successes or, with no
  traffic at all, as old failures fade. The same hash keeps moving means of the latency and
  output tokens of successful calls (the newest weighing :data:`OBSERVED_WEIGHT`), which
  the router reads to know how fast the lane drains (:mod:`lanes.router.load`).

Redis errors surface as :class:`lanes.kernel.errors.InfrastructureError`.
"""

from __future__ import annotations

from typing import Protocol

from lanes.router.lane_state import LaneStateReader, LaneStatus

HEALTH_HALF_LIFE_S = 300.0
"""Default time after which a recorded outcome weighs half as much."""
HEALTH_PRIOR = 1.0
"""Pseudo-successes in the health ratio: one failure on a fresh instance gives 0.5."""
OBSERVED_WEIGHT = 0.05
"""Weight of the newest call in the moving means of latency and output tokens: about the
last 20 calls count."""


def headroom(
    requests: float | None, output_tokens: float | None, output_per_call: float | None
) -> float | None:
    """Calls an instance's buckets would admit now, from what they hold now (None: an
    unlimited bucket): the requests, and the output tokens over ``output_per_call`` (the
    lane's mean; None: not known yet, so not counted). None when neither counts."""
    calls = [max(0.0, requests)] if requests is not None else []
    if output_tokens is not None and output_per_call is not None:
        calls.append(max(0.0, output_tokens) / max(output_per_call, 1.0))
    return min(calls) if calls else None


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

    def record_success(
        self,
        instance: str,
        latency_s: float | None = None,
        output_tokens: int | None = None,
        model: str | None = None,
    ) -> float:
        """Record a successful call (its latency and output tokens, when known, join the
        moving means: the latency also ``model``'s); returns the new health."""
        ...

    def record_failure(self, instance: str, kind: str) -> float:
        """Record a failed call of ``kind`` (e.g. ``"timeout"``); returns the new health."""
        ...

    def clear(self, instance: str) -> None:
        """Forget cooldown, disabled flag and health of the instance."""
        ...


__all__ = [
    "HEALTH_HALF_LIFE_S",
    "HEALTH_PRIOR",
    "OBSERVED_WEIGHT",
    "LaneStateStore",
    "LaneStatus",
    "decay_factor",
    "headroom",
    "health_score",
]
