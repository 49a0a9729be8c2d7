"""In-memory rate limiter with the same semantics as :class:`RedisLimiter`, for tests and for a
single process without Redis. Thread-safe; not shared across processes.

The clock is injectable (seconds, any epoch, must not go backwards) so tests control time
exactly. Waits are rounded up to whole milliseconds, as the Redis scripts report them.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from lanes.kernel.config.models import Limits
from lanes.stores.limiter import (
    SETTLE_GRACE_S,
    WAIT_CAP_S,
    Acquired,
    Denied,
    Reason,
    Reservation,
    Settled,
    UsageSnapshot,
    check_request,
    check_tokens,
)


def bucket_limits(limits: Limits) -> dict[Reason, int]:
    """Per-minute capacity of each limited token bucket (unlimited buckets are left out)."""
    caps = {
        Reason.REQUESTS: limits.requests_per_min,
        Reason.INPUT_TOKENS: limits.input_tokens_per_min,
        Reason.OUTPUT_TOKENS: limits.output_tokens_per_min,
    }
    return {reason: cap for reason, cap in caps.items() if cap > 0}


@dataclass
class _Buckets:
    tokens: dict[Reason, float] = field(default_factory=dict)
    ts_s: float | None = None

    def refilled(self, caps: dict[Reason, int], now_s: float) -> dict[Reason, float]:
        """Tokens per limited bucket at ``now_s``; a bucket never seen is full."""
        elapsed_s = 0.0 if self.ts_s is None else max(0.0, now_s - self.ts_s)
        out: dict[Reason, float] = {}
        for reason, cap in caps.items():
            stored = self.tokens.get(reason)
            out[reason] = cap if stored is None else min(cap, stored + elapsed_s * cap / 60.0)
        return out


@dataclass(frozen=True)
class _Marker:
    input_tokens: int
    output_tokens: int
    expires_at_s: float


class MemoryLimiter:
    """Token buckets and expiring leases in dicts. ``clock`` returns seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _Buckets] = {}
        self._leases: dict[str, dict[str, float]] = {}
        self._markers: dict[tuple[str, str], _Marker] = {}

    def try_acquire(
        self,
        instance: str,
        model_class: str,
        limits: Limits,
        input_tokens: int,
        output_tokens: int,
        lease_ttl_s: float,
        reserve: float = 0.0,
    ) -> Acquired | Denied:
        """See :meth:`lanes.stores.limiter.RateLimiter.try_acquire`."""
        check_request(instance, limits, input_tokens, output_tokens, lease_ttl_s)
        need = {Reason.REQUESTS: 1, Reason.INPUT_TOKENS: input_tokens}
        need[Reason.OUTPUT_TOKENS] = output_tokens
        with self._lock:
            now_s = self._clock()
            caps = bucket_limits(limits)
            state = self._buckets.setdefault((instance, model_class), _Buckets())
            tokens = state.refilled(caps, now_s)
            denied = self._denial(instance, limits, caps, tokens, need, now_s, reserve)
            if denied is not None:
                return denied
            state.tokens = {reason: tokens[reason] - need[reason] for reason in caps}
            state.ts_s = now_s
            lease_id = uuid.uuid4().hex
            self._leases.setdefault(instance, {})[lease_id] = now_s + lease_ttl_s
            expires_at_s = now_s + lease_ttl_s + SETTLE_GRACE_S
            self._markers[instance, lease_id] = _Marker(input_tokens, output_tokens, expires_at_s)
        reservation = Reservation(
            instance, model_class, lease_id, limits, input_tokens, output_tokens, lease_ttl_s
        )
        return Acquired(reservation, now_s)

    def _denial(
        self,
        instance: str,
        limits: Limits,
        caps: dict[Reason, int],
        tokens: dict[Reason, float],
        need: dict[Reason, int],
        now_s: float,
        reserve: float,
    ) -> Denied | None:
        """The binding limit (longest wait) if the reservation does not fit now, ``reserve``
        of every limit left over."""
        reason: Reason | None = None
        wait_s = 0.0
        for bucket, cap in caps.items():
            want = min(cap, need[bucket] + reserve * cap)
            if tokens[bucket] < want:
                bucket_wait_s = (want - tokens[bucket]) * 60.0 / cap
                if bucket_wait_s > wait_s:
                    reason, wait_s = bucket, bucket_wait_s
        leases = self._live_leases(instance, now_s)
        slots = max(1, limits.concurrency - math.ceil(limits.concurrency * reserve))
        if limits.concurrency > 0 and slots <= len(leases):
            lease_wait_s = min(leases.values()) - now_s
            if reason is None or lease_wait_s > wait_s:
                reason, wait_s = Reason.CONCURRENCY, lease_wait_s
        if reason is None:
            return None
        wait_ms = max(1, math.ceil(min(wait_s, WAIT_CAP_S) * 1000))
        return Denied(reason, wait_ms / 1000)

    def _live_leases(self, instance: str, now_s: float) -> dict[str, float]:
        """The instance's unexpired leases; expired ones are dropped."""
        leases = self._leases.setdefault(instance, {})
        for lease_id in [lid for lid, exp_s in leases.items() if exp_s <= now_s]:
            del leases[lease_id]
        return leases

    def settle(self, reservation: Reservation, input_tokens: int, output_tokens: int) -> Settled:
        """See :meth:`lanes.stores.limiter.RateLimiter.settle`."""
        check_tokens(input_tokens, output_tokens)
        return self._end(reservation, "settle", input_tokens, output_tokens)

    def release(self, reservation: Reservation, *, refund: bool = True) -> Settled:
        """See :meth:`lanes.stores.limiter.RateLimiter.release`."""
        return self._end(reservation, "refund" if refund else "keep", 0, 0)

    def _end(self, res: Reservation, mode: str, input_tokens: int, output_tokens: int) -> Settled:
        """Drop the lease; correct the buckets once, as settle.lua does."""
        with self._lock:
            now_s = self._clock()
            self._leases.get(res.instance, {}).pop(res.lease_id, None)
            marker = self._markers.pop((res.instance, res.lease_id), None)
            if marker is None or marker.expires_at_s <= now_s:
                return Settled(False, now_s)
            if mode == "keep":
                return Settled(True, now_s)
            delta = {Reason.REQUESTS: 0, Reason.INPUT_TOKENS: marker.input_tokens}
            delta[Reason.OUTPUT_TOKENS] = marker.output_tokens
            if mode == "refund":
                delta[Reason.REQUESTS] = 1
            else:
                delta[Reason.INPUT_TOKENS] -= input_tokens
                delta[Reason.OUTPUT_TOKENS] -= output_tokens
            caps = bucket_limits(res.limits)
            state = self._buckets.setdefault((res.instance, res.model_class), _Buckets())
            tokens = state.refilled(caps, now_s)
            state.tokens = {r: min(cap, tokens[r] + delta[r]) for r, cap in caps.items()}
            state.ts_s = now_s
            return Settled(True, now_s)

    def usage(self, instance: str, model_class: str, limits: Limits) -> UsageSnapshot:
        """See :meth:`lanes.stores.limiter.RateLimiter.usage`. Changes nothing."""
        with self._lock:
            now_s = self._clock()
            state = self._buckets.get((instance, model_class), _Buckets())
            tokens = state.refilled(bucket_limits(limits), now_s)
            leases = self._leases.get(instance, {})
            live = sum(1 for exp_s in leases.values() if exp_s > now_s)
        return UsageSnapshot(
            requests=tokens.get(Reason.REQUESTS),
            input_tokens=tokens.get(Reason.INPUT_TOKENS),
            output_tokens=tokens.get(Reason.OUTPUT_TOKENS),
            leases_in_use=live,
        )
