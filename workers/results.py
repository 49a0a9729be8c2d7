"""Final results: written once per job, so a redelivered job never yields two results."""

from __future__ import annotations

import json
from typing import Any

import redis

from broker.keys import Keys
from broker.pending import PendingJobs
from kernel.errors import InfrastructureError


class ResultStore:
    """Final results, and the end of each job's pending entry (:mod:`broker.pending`)."""

    def __init__(self, client: redis.Redis, keys: Keys, ttl_s: int, pending: PendingJobs) -> None:
        self._client = client
        self._keys = keys
        self._ttl_s = ttl_s
        self._pending = pending

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The recorded final result of ``job_id``, if any."""
        try:
            raw = self._client.get(self._keys.result_once(job_id))
        except redis.RedisError as exc:
            raise InfrastructureError(f"cannot read result of {job_id}: {exc}") from exc
        return parse_result(raw)

    def get_in(self, pipe: redis.client.Pipeline, job_id: str) -> None:
        """Queue :meth:`get` on ``pipe``; read the reply with :func:`parse_result`."""
        pipe.get(self._keys.result_once(job_id))

    def record_in(self, pipe: redis.client.Pipeline, job_id: str, result: dict[str, Any]) -> None:
        """Queue :meth:`record` on ``pipe``: its first reply says whether this result stands
        (if not, read the one that does with :meth:`get`)."""
        pipe.set(self._keys.result_once(job_id), json.dumps(result), nx=True, ex=self._ttl_s)
        self._pending.forget(pipe, job_id)

    def record(self, job_id: str, result: dict[str, Any]) -> dict[str, Any]:
        """Record ``result`` unless one is already there; return the one that stands."""
        try:
            pipe = self._client.pipeline(transaction=True)
            self.record_in(pipe, job_id, result)
            created = pipe.execute()[0]
        except redis.RedisError as exc:
            raise InfrastructureError(f"cannot record result of {job_id}: {exc}") from exc
        return result if created else self.get(job_id) or result


def parse_result(raw: object) -> dict[str, Any] | None:
    """A recorded result from its raw reply (None when there is none)."""
    return None if raw is None else dict(json.loads(str(raw)))


class ChargeBook:
    """What each job cost, written once per provider call key (job, step, attempt).

    A redelivered message carries the same step and attempt, so a call repeated after a
    worker died is charged under the same key: ``HSETNX`` keeps the first charge only.
    """

    def __init__(self, client: redis.Redis, keys: Keys, ttl_s: int) -> None:
        self._client = client
        self._keys = keys
        self._ttl_s = ttl_s

    def charge_in(
        self, pipe: redis.client.Pipeline, job_id: str, step: int, attempt: int, cost_usd: float
    ) -> None:
        """Queue the charge of call (job, step, attempt) on ``pipe``; its first reply is 0 when
        that call was already charged."""
        key = self._keys.charges(job_id)
        pipe.hsetnx(key, f"{step}:{attempt}", repr(cost_usd))
        pipe.expire(key, self._ttl_s)

    def charges(self, job_id: str) -> dict[str, float]:
        """Every charge of ``job_id`` by ``step:attempt``."""
        try:
            raw = self._client.hgetall(self._keys.charges(job_id))
        except redis.RedisError as exc:
            raise InfrastructureError(f"cannot read the charges of {job_id}: {exc}") from exc
        return {str(k): float(v) for k, v in raw.items()}
