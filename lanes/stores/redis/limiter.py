"""The global rate limiter: token buckets and leases in Redis, shared by every worker process.

Each operation is one ``EVALSHA`` of a script in ``broker/lua`` (``acquire.lua``,
``settle.lua``, ``usage.lua``), atomic on the server and timed by ``redis.call('TIME')``, so
workers on hosts with skewed clocks still agree. All keys of one instance share the
``{instance}`` hash tag and therefore one Redis Cluster slot.

Redis errors surface as :class:`lanes.kernel.errors.InfrastructureError`.
"""

from __future__ import annotations

import math
import uuid

import redis

from lanes.kernel.config.models import Limits
from lanes.kernel.errors import InfrastructureError
from lanes.stores.keys import Keys
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
from lanes.stores.scripts import LimiterScripts, queue_script, redis_errors, server_time_s, text


def _ms(seconds: float) -> int:
    """Whole milliseconds, rounded up, at least 1."""
    return max(1, math.ceil(seconds * 1000))


class RedisLimiter:
    """:class:`lanes.stores.limiter.RateLimiter` on Redis. Safe to share between threads."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self._scripts = LimiterScripts.register(client)

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
        """See :meth:`lanes.stores.limiter.RateLimiter.try_acquire`. One round trip."""
        check_request(instance, limits, input_tokens, output_tokens, lease_ttl_s)
        lease_id = uuid.uuid4().hex
        keys = [
            self._keys.limiter(instance, model_class),
            self._keys.leases(instance),
            self._keys.reservation(instance, lease_id),
        ]
        args: list[str | int | float] = [
            lease_id,
            _ms(lease_ttl_s),
            _ms(lease_ttl_s + SETTLE_GRACE_S),
            limits.requests_per_min,
            limits.input_tokens_per_min,
            limits.output_tokens_per_min,
            limits.concurrency,
            input_tokens,
            output_tokens,
            _ms(WAIT_CAP_S),
            reserve,
        ]
        with redis_errors(f"reserving capacity on {instance}/{model_class}"):
            status, reason, wait_ms, time_s, time_us = self._scripts.acquire(keys=keys, args=args)
        status, reason = text(status), text(reason)
        if status == "ok":
            reservation = Reservation(
                instance, model_class, lease_id, limits, input_tokens, output_tokens, lease_ttl_s
            )
            return Acquired(reservation, server_time_s(time_s, time_us))
        if status == "denied":
            return Denied(Reason(reason), int(wait_ms) / 1000)
        raise InfrastructureError(f"unexpected reply from acquire.lua: {status!r} {reason!r}")

    def settle(self, reservation: Reservation, input_tokens: int, output_tokens: int) -> Settled:
        """See :meth:`lanes.stores.limiter.RateLimiter.settle`. One round trip."""
        check_tokens(input_tokens, output_tokens)
        return self._end(reservation, "settle", input_tokens, output_tokens)

    def release(self, reservation: Reservation, *, refund: bool = True) -> Settled:
        """See :meth:`lanes.stores.limiter.RateLimiter.release`. One round trip."""
        return self._end(reservation, "refund" if refund else "keep", 0, 0)

    def settle_in(
        self, pipe: redis.client.Pipeline, res: Reservation, input_tokens: int, output_tokens: int
    ) -> None:
        """Queue :meth:`settle` on ``pipe`` (its reply is the script's, unparsed)."""
        keys, args = self._end_call(res, "settle", input_tokens, output_tokens)
        queue_script(pipe, self._scripts.settle, keys, list(args))

    def _end(self, res: Reservation, mode: str, input_tokens: int, output_tokens: int) -> Settled:
        keys, args = self._end_call(res, mode, input_tokens, output_tokens)
        with redis_errors(f"settling a reservation on {res.instance}/{res.model_class}"):
            applied, time_s, time_us = self._scripts.settle(keys=keys, args=args)
        return Settled(int(applied) == 1, server_time_s(time_s, time_us))

    def _end_call(
        self, res: Reservation, mode: str, input_tokens: int, output_tokens: int
    ) -> tuple[list[str], list[str | int]]:
        keys = [
            self._keys.limiter(res.instance, res.model_class),
            self._keys.leases(res.instance),
            self._keys.reservation(res.instance, res.lease_id),
        ]
        limits = res.limits
        args: list[str | int] = [
            res.lease_id,
            limits.requests_per_min,
            limits.input_tokens_per_min,
            limits.output_tokens_per_min,
            mode,
            input_tokens,
            output_tokens,
        ]
        return keys, args

    def usage(self, instance: str, model_class: str, limits: Limits) -> UsageSnapshot:
        """See :meth:`lanes.stores.limiter.RateLimiter.usage`. One round trip, no writes."""
        keys = [self._keys.limiter(instance, model_class), self._keys.leases(instance)]
        args = [limits.requests_per_min, limits.input_tokens_per_min, limits.output_tokens_per_min]
        with redis_errors(f"reading usage of {instance}/{model_class}"):
            requests, input_tokens, output_tokens, leases, _, _ = self._scripts.usage(
                keys=keys, args=args
            )
        return UsageSnapshot(
            requests=_optional_float(requests),
            input_tokens=_optional_float(input_tokens),
            output_tokens=_optional_float(output_tokens),
            leases_in_use=int(leases),
        )


def _optional_float(value: object) -> float | None:
    """``''`` (an unlimited bucket) as None, anything else as a float."""
    raw = text(value)
    return float(raw) if raw else None
