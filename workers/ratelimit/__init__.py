"""Global rate limiting of provider calls: see :mod:`workers.ratelimit.base` for the contract
and how a worker waits for capacity."""

from workers.ratelimit.base import (
    Acquired,
    CapacityWait,
    Denied,
    RateLimiter,
    Reason,
    Reservation,
    ReservationTooLarge,
    Settled,
    UsageSnapshot,
    acquire_blocking,
)
from workers.ratelimit.memory import MemoryLimiter
from workers.ratelimit.redis_limiter import RedisLimiter

__all__ = [
    "Acquired",
    "CapacityWait",
    "Denied",
    "MemoryLimiter",
    "RateLimiter",
    "Reason",
    "RedisLimiter",
    "Reservation",
    "ReservationTooLarge",
    "Settled",
    "UsageSnapshot",
    "acquire_blocking",
]
