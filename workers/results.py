"""Final results: written once per job, so a redelivered job never yields two results."""

from __future__ import annotations

import json
from typing import Any

import redis

from broker.keys import Keys
from lanes.errors import InfrastructureError


class ResultStore:
    def __init__(self, client: redis.Redis, keys: Keys, ttl_s: int) -> None:
        self._client = client
        self._keys = keys
        self._ttl_s = ttl_s

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The recorded final result of ``job_id``, if any."""
        try:
            raw = self._client.get(self._keys.result_once(job_id))
        except redis.RedisError as exc:
            raise InfrastructureError(f"cannot read result of {job_id}: {exc}") from exc
        return None if raw is None else dict(json.loads(raw))

    def record(self, job_id: str, result: dict[str, Any]) -> dict[str, Any]:
        """Record ``result`` unless one is already there; return the one that stands."""
        key = self._keys.result_once(job_id)
        try:
            created = self._client.set(key, json.dumps(result), nx=True, ex=self._ttl_s)
            if created:
                return result
            raw = self._client.get(key)
        except redis.RedisError as exc:
            raise InfrastructureError(f"cannot record result of {job_id}: {exc}") from exc
        return result if raw is None else dict(json.loads(raw))


class ChargeBook:
    """What each job cost, written once per provider call key (job, step, attempt).

    A redelivered message carries the same step and attempt, so a call repeated after a
    worker died is charged under the same key: ``HSETNX`` keeps the first charge only.
    """

    def __init__(self, client: redis.Redis, keys: Keys, ttl_s: int) -> None:
        self._client = client
        self._keys = keys
        self._ttl_s = ttl_s

    def charge(self, job_id: str, step: int, attempt: int, cost_usd: float) -> bool:
        """Record the cost of call (job, step, attempt); False if it was already charged."""
        key = self._keys.charges(job_id)
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.hsetnx(key, f"{step}:{attempt}", repr(cost_usd))
            pipe.expire(key, self._ttl_s)
            created, _ = pipe.execute()
        except redis.RedisError as exc:
            raise InfrastructureError(f"cannot record the charge of {job_id}: {exc}") from exc
        return bool(created)

    def charges(self, job_id: str) -> dict[str, float]:
        """Every charge of ``job_id`` by ``step:attempt``."""
        try:
            raw = self._client.hgetall(self._keys.charges(job_id))
        except redis.RedisError as exc:
            raise InfrastructureError(f"cannot read the charges of {job_id}: {exc}") from exc
        return {str(k): float(v) for k, v in raw.items()}


_RAISE_HOP = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then
    redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
    return 1
end
return 0
"""


class Handoffs:
    """How far each job has moved on, so a stale message is dropped instead of calling again.

    A message that hands its job on (retry, wait, move, fallback) publishes the next message
    and then acknowledges itself. If that acknowledgement is lost (the worker dies, Redis
    restarts), the broker redelivers the old message after the visibility timeout, while the
    job already runs further on: without this check the old step would call its provider a
    second time and be charged under another (step, attempt).
    """

    def __init__(self, client: redis.Redis, keys: Keys, ttl_s: int) -> None:
        self._client = client
        self._keys = keys
        self._ttl_s = ttl_s
        self._raise = client.register_script(_RAISE_HOP)

    def mark(self, job_id: str, hop: int) -> None:
        """Record that the job's message ``hop`` handed it on (published its successor)."""
        try:
            self._raise(keys=[self._keys.handed_on(job_id)], args=[hop, self._ttl_s])
        except redis.RedisError as exc:
            raise InfrastructureError(f"cannot record the hand-off of {job_id}: {exc}") from exc

    def is_stale(self, job_id: str, hop: int) -> bool:
        """Whether message ``hop`` of the job, or a later one, already handed the job on."""
        try:
            raw = self._client.get(self._keys.handed_on(job_id))
        except redis.RedisError as exc:
            raise InfrastructureError(f"cannot read the hand-offs of {job_id}: {exc}") from exc
        return raw is not None and hop <= int(raw)
