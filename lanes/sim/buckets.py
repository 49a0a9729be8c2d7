"""Per-minute limits as token buckets with continuous refill, the way the real APIs meter.

A bucket holds one minute's allowance and refills at ``limit / 60`` per second. One
:class:`Limiter` holds the three buckets of one model class of an instance. Nothing here
locks or reads a clock: callers pass ``now_s`` (monotonic seconds) and hold their instance's
lock, which keeps the arithmetic testable without sleeping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from lanes.sim.profiles import ModelLimits

LimitName = Literal["requests", "input_tokens", "output_tokens"]


class TokenBucket:
    """One limit. ``per_min == 0`` is unlimited: it always admits and reports nothing.

    A request larger than the whole bucket is clamped to the bucket's size, so it waits
    for a full bucket instead of never fitting.
    """

    __slots__ = ("capacity", "level", "rate_per_s", "updated_s")

    def __init__(self, per_min: int, now_s: float) -> None:
        self.capacity = float(per_min)
        self.rate_per_s = per_min / 60.0
        self.level = self.capacity
        self.updated_s = now_s

    @property
    def unlimited(self) -> bool:
        return self.capacity <= 0

    def _refill(self, now_s: float) -> None:
        elapsed_s = max(0.0, now_s - self.updated_s)
        self.level = min(self.capacity, self.level + elapsed_s * self.rate_per_s)
        self.updated_s = now_s

    def wait_s(self, amount: int, now_s: float) -> float:
        """Seconds until ``amount`` fits; 0 when it fits now."""
        if self.unlimited:
            return 0.0
        self._refill(now_s)
        deficit = min(float(amount), self.capacity) - self.level
        return max(0.0, deficit) / self.rate_per_s

    def take(self, amount: int, now_s: float) -> None:
        """Remove ``amount`` (clamped to the capacity); may go below 0 only if unchecked."""
        if not self.unlimited:
            self._refill(now_s)
            self.level -= min(float(amount), self.capacity)

    def give_back(self, amount: int, now_s: float) -> None:
        if not self.unlimited:
            self._refill(now_s)
            self.level = min(self.capacity, self.level + amount)

    def remaining(self, now_s: float) -> int:
        if self.unlimited:
            return 0
        self._refill(now_s)
        return max(0, math.floor(self.level))

    def full_in_s(self, now_s: float) -> float:
        """Seconds until the bucket is full again."""
        if self.unlimited:
            return 0.0
        self._refill(now_s)
        return (self.capacity - self.level) / self.rate_per_s


@dataclass(frozen=True, slots=True)
class BucketState:
    """What rate-limit headers report about one limited bucket."""

    name: LimitName
    limit: int
    remaining: int
    full_in_s: float


@dataclass(frozen=True, slots=True)
class Denial:
    """A request that does not fit: which limit refused it, and when it would fit."""

    name: LimitName
    limit: int
    retry_after_s: int
    """Whole seconds, rounded up and at least 1, as the ``retry-after`` header carries."""
    model_class: str | None = None
    """The model whose own limits refused it; None for the instance-wide limits."""


class Limiter:
    """The three buckets of one model class of an instance, checked and charged together.

    ``model_class`` is the model these buckets belong to, or None for the instance-wide
    buckets that every model without limits of its own shares.
    """

    def __init__(self, limits: ModelLimits, now_s: float, model_class: str | None = None) -> None:
        self.model_class = model_class
        self.buckets: dict[LimitName, TokenBucket] = {
            "requests": TokenBucket(limits.requests_per_min, now_s),
            "input_tokens": TokenBucket(limits.input_tokens_per_min, now_s),
            "output_tokens": TokenBucket(limits.output_tokens_per_min, now_s),
        }

    def admit(self, input_tokens: int, output_tokens: int, now_s: float) -> Denial | None:
        """Charge one request, or charge nothing and say which limit refused it.

        ``output_tokens`` is the estimate charged up front (``max_tokens``); settle the
        real count later with :meth:`refund`.
        """
        wanted: dict[LimitName, int] = {
            "requests": 1,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
        }
        waits = {name: self.buckets[name].wait_s(n, now_s) for name, n in wanted.items()}
        worst = max(waits, key=lambda name: waits[name])
        if waits[worst] > 0:
            limit = int(self.buckets[worst].capacity)
            return Denial(worst, limit, max(1, math.ceil(waits[worst])), self.model_class)
        for name, amount in wanted.items():
            self.buckets[name].take(amount, now_s)
        return None

    def refund(self, charged_output: int, used_output: int, now_s: float) -> None:
        """Return the unused part of the up-front output charge."""
        bucket = self.buckets["output_tokens"]
        charged = min(charged_output, int(bucket.capacity)) if not bucket.unlimited else 0
        if charged > used_output:
            bucket.give_back(charged - used_output, now_s)

    def states(self, now_s: float) -> list[BucketState]:
        """The limited buckets only; unlimited ones have nothing to report."""
        return [
            BucketState(name, int(b.capacity), b.remaining(now_s), b.full_in_s(now_s))
            for name, b in self.buckets.items()
            if not b.unlimited
        ]
