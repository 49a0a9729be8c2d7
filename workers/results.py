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
