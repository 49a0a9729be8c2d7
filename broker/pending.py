"""Unfinished jobs and the message each one waits on: what rescues a lost message.

Every job is tracked from submit to its one result. Each time a message hands its job on
(retry, wait, move to a pool member, fallback) the successor's envelope replaces the entry,
and the handing message's ``hop`` is marked so that a redelivered copy of it is dropped as
stale. The entry goes when the result is recorded. :mod:`broker.janitor` re-sends the entry
of a job whose message is in no queue and held by no worker.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from broker.keys import Keys
from broker.scripts import lua_source, redis_errors, text


def stale_hop(raw: object, hop: int) -> bool:
    """Whether ``hop`` is at or below the recorded hand-off mark ``raw`` (None: no mark)."""
    return raw is not None and hop <= int(text(raw))


class PendingJobs:
    def __init__(self, client: redis.Redis, keys: Keys, ttl_s: int) -> None:
        self._client = client
        self._keys = keys
        self._ttl_s = ttl_s
        self._track = client.register_script(lua_source("track"))

    def track(self, job_id: str, queue: str, envelope: dict[str, Any]) -> None:
        """A submitted job: its first message goes to ``queue``."""
        self._record(job_id, -1, queue, envelope)

    def hand_on(self, job_id: str, hop: int, queue: str, envelope: dict[str, Any]) -> bool:
        """Message ``hop`` handed the job on to ``envelope`` on ``queue``; False if stale."""
        return self._record(job_id, hop, queue, envelope)

    def _record(self, job_id: str, hop: int, queue: str, envelope: dict[str, Any]) -> bool:
        keys = [
            self._keys.handed_on(job_id),
            self._keys.pending(),
            self._keys.pending_since(),
        ]
        entry = json.dumps({"queue": queue, "envelope": envelope})
        with redis_errors(f"tracking job {job_id}"):
            return bool(self._track(keys=keys, args=[job_id, hop, self._ttl_s, entry]))

    def is_stale_in(self, pipe: redis.client.Pipeline, job_id: str) -> None:
        """Queue the read of the job's hand-off mark on ``pipe``; judge the reply with
        :func:`stale_hop` (whether a message's hop is stale)."""
        pipe.get(self._keys.handed_on(job_id))

    def forget(self, pipe: redis.client.Pipeline, job_id: str) -> None:
        """Queue the commands that drop the job's entry (its result is being recorded)."""
        pipe.hdel(self._keys.pending(), job_id)
        pipe.zrem(self._keys.pending_since(), job_id)

    def untrack(self, job_id: str) -> None:
        """Drop the entry of a job that never made it onto a queue."""
        with redis_errors(f"untracking job {job_id}"):
            pipe = self._client.pipeline(transaction=True)
            self.forget(pipe, job_id)
            pipe.execute()

    def quiet_since(self, cutoff_s: float) -> dict[str, dict[str, Any]]:
        """Entries unchanged since server time ``cutoff_s``, by job id."""
        with redis_errors("reading pending jobs"):
            ids = [text(i) for i in self._client.zrangebyscore(self._keys.pending_since(),
                                                               "-inf", cutoff_s)]  # fmt: skip
            if not ids:
                return {}
            raws = self._client.hmget(self._keys.pending(), ids)
        return {i: json.loads(text(raw)) for i, raw in zip(ids, raws, strict=True) if raw}

    def touch(self, job_ids: list[str], now_s: float) -> None:
        """Mark jobs as seen alive at server time ``now_s``."""
        if job_ids:
            with redis_errors("touching pending jobs"):
                self._client.zadd(self._keys.pending_since(), dict.fromkeys(job_ids, now_s))

    def server_now_s(self) -> float:
        with redis_errors("reading the server time"):
            seconds, micros = self._client.time()
        return float(seconds) + float(micros) / 1_000_000
