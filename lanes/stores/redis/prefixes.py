"""The prefix store in Redis (:class:`lanes.stores.prefixes.PrefixStore`): plain keys with
TTLs. A race between two dispatchers costs at most one more cache write, never an answer."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from lanes.stores.keys import Keys
from lanes.stores.prefixes import PLAN_TTL_S, Gate
from lanes.stores.scripts import redis_errors, text

_LIFT = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)


class RedisPrefixes:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self._lift = client.register_script(_LIFT)

    def place(self, digest: str, model: str, members: Sequence[str], choice: str) -> str:
        names = [self._keys.prefix_held(digest, model, m) for m in members]
        names += [self._keys.prefix_gate(digest, model, m) for m in members]
        with redis_errors("reading where a prefix is cached"):
            found = self._client.mget(names)
            size = len(members)
            for index, member in enumerate(members):
                if found[index] is not None or found[size + index] is not None:
                    return member
            plan = self._keys.prefix_plan(digest, model)
            self._client.set(plan, choice, nx=True, ex=PLAN_TTL_S)
            planned = self._client.get(plan)
        where = text(planned) if planned is not None else choice
        return where if where in members else choice

    def gate(self, digest: str, model: str, instance: str, job_id: str, lease_s: float) -> Gate:
        gate = self._keys.prefix_gate(digest, model, instance)
        with redis_errors("opening a prefix's write gate"):
            if self._client.exists(self._keys.prefix_held(digest, model, instance)):
                return Gate.WARM
            lease_ms = max(1, int(lease_s * 1000))
            if self._client.set(gate, job_id, nx=True, px=lease_ms):
                return Gate.WRITE
            holder = self._client.get(gate)
        if holder is None or text(holder) == job_id:
            return Gate.WRITE  # the writer just finished, or this is the writer again
        return Gate.WAIT

    def written(self, digest: str, model: str, instance: str, job_id: str, ttl_s: int) -> None:
        with redis_errors("recording a cached prefix"):
            self._client.set(self._keys.prefix_held(digest, model, instance), "1", ex=ttl_s)
            self._lift(keys=[self._keys.prefix_gate(digest, model, instance)], args=[job_id])

    def release(self, digest: str, model: str, instance: str, job_id: str) -> None:
        with redis_errors("lifting a prefix's write gate"):
            self._lift(keys=[self._keys.prefix_gate(digest, model, instance)], args=[job_id])
