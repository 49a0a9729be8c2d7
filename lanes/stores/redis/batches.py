"""The batch store in Redis (:class:`lanes.stores.batches.BatchStore`): every key under the
``{batch}`` hash tag, the move from waiting to a batch in one script (``batch_take.lua``)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import redis

from lanes.stores.batches import OpenBatch, Parked
from lanes.stores.keys import Keys
from lanes.stores.scripts import lua_source, redis_errors, text


class RedisBatches:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self._take = client.register_script(lua_source("batch_take"))
        base = keys.batch_members()
        self._parked, self._batch_of, self._sizes = base, f"{base}:batch", f"{base}:bytes"

    def park(self, instance: str, model: str, job_id: str, parked: Parked, size: int,
             now_s: float) -> bool:  # fmt: skip
        record = json.dumps({"envelope": parked.envelope, "call": parked.call})
        with redis_errors("parking a job for a batch"):
            if not self._client.hsetnx(self._parked, job_id, record):
                return False
            pipe = self._client.pipeline(transaction=True)
            pipe.hset(self._sizes, job_id, size)
            pipe.zadd(self._keys.batch_gather(instance, model), {job_id: now_s})
            pipe.execute()
        return True

    def take(self, instance: str, model: str, batch_id: str, *, most: int, most_bytes: int,
             window_s: float, now_s: float) -> list[str]:  # fmt: skip
        head = json.dumps({"batch_id": batch_id, "instance": instance, "model": model,
                           "created_at": now_s})[:-1]  # fmt: skip
        keys = [self._keys.batch_gather(instance, model), self._batch_of, self._sizes,
                self._keys.batch_open()]  # fmt: skip
        with redis_errors("gathering a batch"):
            taken = self._take(keys=keys, args=[batch_id, most, most_bytes, window_s, now_s, head])
        return [text(job) for job in taken]

    def submitted(self, batch_id: str, provider_id: str, custom_ids: dict[str, str]) -> None:
        with redis_errors("recording a submitted batch"):
            raw = self._client.hget(self._keys.batch_open(), batch_id)
            if raw is None:
                return
            record = json.loads(text(raw))
            record.update(provider_id=provider_id, custom_ids=custom_ids)
            self._client.hset(self._keys.batch_open(), batch_id, json.dumps(record))

    def open_batches(self) -> list[OpenBatch]:
        with redis_errors("reading the open batches"):
            raws = self._client.hvals(self._keys.batch_open())
        return [OpenBatch(**json.loads(text(raw))) for raw in raws]

    def waiting(self, lanes: Sequence[tuple[str, str]]) -> list[int]:
        pipe = self._client.pipeline(transaction=False)
        for instance, model in lanes:
            pipe.zcard(self._keys.batch_gather(instance, model))
        with redis_errors("counting jobs waiting for a batch"):
            return [int(n) for n in pipe.execute()]

    def member(self, job_id: str) -> Parked | None:
        return self.members([job_id])[0]

    def members(self, job_ids: Sequence[str]) -> list[Parked | None]:
        if not job_ids:
            return []
        with redis_errors("reading parked jobs"):
            raws = self._client.hmget(self._parked, list(job_ids))
        return [None if raw is None else _parked(raw) for raw in raws]

    def withdraw(self, job_id: str) -> None:
        found = self.member(job_id)
        if found is None:
            return
        record = {"envelope": found.envelope, "call": found.call, "withdrawn": True}
        with redis_errors("withdrawing a job from its batch"):
            self._client.hset(self._parked, job_id, json.dumps(record))

    def forget(self, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        with redis_errors("forgetting settled batch members"):
            pipe = self._client.pipeline(transaction=True)
            for name in (self._parked, self._batch_of, self._sizes):
                pipe.hdel(name, *job_ids)
            pipe.execute()

    def close(self, batch_id: str) -> None:
        with redis_errors("closing a batch"):
            self._client.hdel(self._keys.batch_open(), batch_id)

    def lock(self, name: str, ttl_s: float) -> bool:
        with redis_errors("taking a batch lock"):
            ms = max(1, int(ttl_s * 1000))
            return bool(self._client.set(self._keys.batch_lock(name), "1", nx=True, px=ms))

    def unlock(self, name: str) -> None:
        with redis_errors("releasing a batch lock"):
            self._client.delete(self._keys.batch_lock(name))

    def parked_ids(self) -> set[str]:
        with redis_errors("listing parked jobs"):
            return {text(job) for job in self._client.hkeys(self._parked)}


def _parked(raw: object) -> Parked:
    data = json.loads(text(raw))
    return Parked(data["envelope"], int(data["call"]), bool(data.get("withdrawn", False)))
