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
"""Delete a gate only if its writer holds it (a lapsed lease may have passed it on)."""
_GATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'warm' end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 'write' end
if redis.call('GET', KEYS[2]) == ARGV[1] then return 'write' end
return 'wait'
"""
"""Warm when the instance holds the prefix; else the write gate, taken for ``ARGV[1]``
unless another job holds it: one round trip, one decision."""


class RedisPrefixes:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self._lift = client.register_script(_LIFT)
        self._gate = client.register_script(_GATE)

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
        keys = [self._keys.prefix_held(digest, model, instance),
                self._keys.prefix_gate(digest, model, instance)]  # fmt: skip
        with redis_errors("opening a prefix's write gate"):
            found = self._gate(keys=keys, args=[job_id, max(1, int(lease_s * 1000))])
        return Gate(text(found))

    def written(self, digest: str, model: str, instance: str, job_id: str, ttl_s: int) -> None:
        with redis_errors("recording a cached prefix"):
            self._client.set(self._keys.prefix_held(digest, model, instance), "1", ex=ttl_s)
            self._lift(keys=[self._keys.prefix_gate(digest, model, instance)], args=[job_id])

    def release(self, digest: str, model: str, instance: str, job_id: str) -> None:
        with redis_errors("lifting a prefix's write gate"):
            self._lift(keys=[self._keys.prefix_gate(digest, model, instance)], args=[job_id])
