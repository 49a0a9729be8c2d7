"""The Redis limiter holds its limits across processes (spawned, not forked).

Four processes hammer one instance for a few seconds. Every grant and every settle is stamped
with the Redis TIME of the script that made it, so the checks run on the limiter's own clock:

* requests: in every window [t_i, t_j] of grants, count <= capacity + refill rate * (t_j - t_i)
  (the token-bucket bound, i.e. the per-minute limit scaled to any window length);
* concurrency: at no instant are more leases held than allowed.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time

import redis

from lanes.kernel.config.models import Limits
from lanes.stores.keys import Keys
from lanes.stores.limiter import Acquired, Denied
from lanes.stores.redis.limiter import RedisLimiter

INSTANCE = "shared"
LIMITS = Limits(requests_per_min=120, output_tokens_per_min=30000, concurrency=3)
PROCESSES = 4
HAMMER_S = 3.0
LEASE_TTL_S = 2.0


def _hammer(
    redis_url: str, prefix: str, start_at_s: float
) -> tuple[list[tuple[float, float]], dict[str, int]]:
    """Acquire, hold briefly, settle; until HAMMER_S after ``start_at_s`` (wall clock).

    Returns the (granted_at_s, settled_at_s) of each grant and the count of denials by reason.
    """
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    limiter = RedisLimiter(client, Keys(prefix=prefix))
    rng = random.Random(os.getpid())
    time.sleep(max(0.0, start_at_s - time.time()))
    held: list[tuple[float, float]] = []
    denials: dict[str, int] = {}
    while time.time() < start_at_s + HAMMER_S:
        result = limiter.try_acquire(INSTANCE, "all", LIMITS, 20, 200, 10.0)
        if isinstance(result, Denied):
            denials[result.reason] = denials.get(result.reason, 0) + 1
            time.sleep(min(result.wait_s, 0.01))
            continue
        time.sleep(rng.uniform(0.002, 0.02))
        settled = limiter.settle(result.reservation, 20, rng.randint(0, 200))
        assert settled.applied
        held.append((result.granted_at_s, settled.at_s))
    client.close()
    return held, denials


def _acquire_and_die(redis_url: str, prefix: str) -> None:
    """Take the only lease for LEASE_TTL_S, then get killed before releasing it."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    limiter = RedisLimiter(client, Keys(prefix=prefix))
    result = limiter.try_acquire(INSTANCE, "all", Limits(concurrency=1), 0, 0, LEASE_TTL_S)
    assert isinstance(result, Acquired)
    os.kill(os.getpid(), signal.SIGKILL)


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most intervals [start, end) holding at one instant; an end at t comes before a start at t."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


def _worst_window_excess(grants_s: list[float], capacity: float, per_s: float) -> float:
    """Largest (grants in [t_i, t_j]) - (capacity + per_s * (t_j - t_i)) over all windows."""
    worst = float("-inf")
    for i, start_s in enumerate(grants_s):
        for j in range(i, len(grants_s)):
            allowed = capacity + per_s * (grants_s[j] - start_s)
            worst = max(worst, (j - i + 1) - allowed)
    return worst


def test_no_window_exceeds_the_limits_across_processes(
    redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    ctx = multiprocessing.get_context("spawn")
    start_at_s = time.time() + 2.0  # room for the spawned interpreters to import
    with ctx.Pool(PROCESSES) as pool:
        results = pool.starmap(_hammer, [(redis_url, keys.prefix, start_at_s)] * PROCESSES)
    held = [interval for intervals, _ in results for interval in intervals]
    denials = [reason for _, by_reason in results for reason in by_reason]
    grants_s = sorted(start for start, _ in held)

    capacity = LIMITS.requests_per_min
    assert len(grants_s) >= capacity, "the request bucket was never drained: test too weak"
    assert {"requests", "concurrency"} <= set(denials)
    assert _worst_window_excess(grants_s, capacity, capacity / 60) <= 1e-6
    assert _max_overlap(held) <= LIMITS.concurrency
    assert RedisLimiter(redis_client, keys).usage(INSTANCE, "all", LIMITS)["leases_in_use"] == 0


def test_a_killed_processs_lease_comes_back_after_its_ttl(
    redis_url: str, keys: Keys, redis_client: redis.Redis
) -> None:
    ctx = multiprocessing.get_context("spawn")
    holder = ctx.Process(target=_acquire_and_die, args=(redis_url, keys.prefix))
    holder.start()
    holder.join(timeout=30)
    assert holder.exitcode == -signal.SIGKILL

    limiter = RedisLimiter(redis_client, keys)
    one = Limits(concurrency=1)
    denied = limiter.try_acquire(INSTANCE, "all", one, 0, 0, 30)
    assert isinstance(denied, Denied)
    assert denied.reason == "concurrency"
    assert 0 < denied.wait_s <= LEASE_TTL_S
    time.sleep(denied.wait_s + 0.05)
    assert isinstance(limiter.try_acquire(INSTANCE, "all", one, 0, 0, 30), Acquired)
