"""Job state in Redis (:class:`lanes.stores.jobs.JobStore`), shared by every process.

The result lives in Celery's own result key, in Celery's task-meta format, written once by
``record.lua`` (``SET NX`` + ``PUBLISH``): ``AsyncResult.get`` and canvases find it there, and
the ``lanes.run`` task stores nothing itself (``ignore_result``), so a result is stored once.

The ``*_in`` methods queue the same reads and writes on a pipeline, for the two round trips
that frame every provider call (:mod:`lanes.stores.redis.frame`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import redis

from lanes.broker.result import Result
from lanes.stores.jobs import Cancelled, Claim, PendingEntry, Tracked
from lanes.stores.keys import Keys
from lanes.stores.replication import Replication
from lanes.stores.scripts import (
    JobScripts,
    execute_with_scripts,
    queue_script,
    redis_errors,
    server_time_s,
    text,
)

SUCCESS = "SUCCESS"
"""Celery's state of a task that returned; a lanes job that failed also returned a Result."""


def result_meta(result: Result) -> str:
    """``result`` as the JSON task meta Celery's Redis result backend stores and decodes."""
    meta: dict[str, Any] = {
        "status": SUCCESS,
        "result": result.to_wire(),
        "traceback": None,
        "children": [],
        "date_done": datetime.now(UTC).isoformat(),
        "task_id": result.job_id,
    }
    return json.dumps(meta)


def parse_result(raw: object) -> Result | None:
    """The recorded result from a raw task-meta reply; None when there is none yet (or the
    task ended without a lanes result, e.g. a worker bug recorded as a Celery FAILURE)."""
    if raw is None:
        return None
    meta = json.loads(text(raw))
    if meta.get("status") != SUCCESS or not isinstance(meta.get("result"), dict):
        return None
    return Result.model_validate(meta["result"])


_CLAIMS = {
    0: Claim.CONFLICT,
    1: Claim.NEW,
    2: Claim.SAME,
    3: Claim.KEY_SAME,
    4: Claim.KEY_CONFLICT,
}
"""submit.lua's reply codes."""


def stale_hop(raw: object, hop: int) -> bool:
    """Whether ``hop`` is at or below the recorded hand-off mark ``raw`` (None: no mark)."""
    return raw is not None and hop <= int(text(raw))


class RedisJobStore:
    def __init__(
        self, client: redis.Redis, keys: Keys, ttl_s: int, replication: Replication | None = None
    ) -> None:
        self._client = client
        self._keys = keys
        self._ttl_s = ttl_s
        self._scripts = JobScripts.register(client)
        self._replication = replication
        """When set, a result is published to its waiters only once a replica holds it."""

    # -- submit ---------------------------------------------------------------------------------
    def track(
        self,
        job_id: str,
        fingerprint: str,
        queue: str,
        envelope: dict[str, Any],
        idempotency_key: str | None = None,
    ) -> Tracked:
        keys = self._submit_keys(job_id, idempotency_key)
        entry = json.dumps({"queue": queue, "envelope": envelope})
        with redis_errors(f"submitting job {job_id}"):
            args: list[str | int] = [job_id, fingerprint, self._ttl_s, entry, queue]
            code, holder = self._scripts.submit(keys=keys, args=args)
        return Tracked(_CLAIMS[int(code)], text(holder))

    def untrack(self, job_id: str, idempotency_key: str | None = None) -> None:
        with redis_errors(f"untracking job {job_id}"):
            self._scripts.untrack(keys=self._submit_keys(job_id, idempotency_key), args=[job_id])

    def _submit_keys(self, job_id: str, idempotency_key: str | None) -> list[str]:
        keys = [self._keys.owner(job_id), *self._pending_keys()]
        return [*keys, self._keys.idempotency(idempotency_key)] if idempotency_key else keys

    def _pending_keys(self) -> list[str]:
        """KEYS[2] to KEYS[5] of the scripts that change what is pending: the entries, their
        times, the backlog by lane and each job's lane."""
        keys = self._keys
        return [keys.pending(), keys.pending_since(), keys.backlog(), keys.pending_lane()]

    # -- a worker's step ------------------------------------------------------------------------
    def hand_on(self, job_id: str, hop: int, queue: str, envelope: dict[str, Any]) -> bool:
        keys = [self._keys.handed_on(job_id), *self._pending_keys()]
        entry = json.dumps({"queue": queue, "envelope": envelope})
        with redis_errors(f"tracking job {job_id}"):
            args: list[str | int] = [job_id, hop, self._ttl_s, entry, queue]
            return bool(self._scripts.track(keys=keys, args=args))

    def is_stale(self, job_id: str, hop: int) -> bool:
        with redis_errors(f"reading the hand-off mark of job {job_id}"):
            return stale_hop(self._client.get(self._keys.handed_on(job_id)), hop)

    def stale_in(self, pipe: redis.client.Pipeline, job_id: str) -> None:
        """Queue :meth:`is_stale`'s read; judge its reply with :func:`stale_hop`."""
        pipe.get(self._keys.handed_on(job_id))

    def result(self, job_id: str) -> Result | None:
        with redis_errors(f"reading the result of job {job_id}"):
            return parse_result(self._client.get(self._keys.result(job_id)))

    def result_in(self, pipe: redis.client.Pipeline, job_id: str) -> None:
        """Queue :meth:`result`'s read; parse its reply with :func:`parse_result`."""
        pipe.get(self._keys.result(job_id))

    def record(self, result: Result) -> Result:
        with redis_errors(f"recording the result of job {result.job_id}"):
            created = execute_with_scripts(self._client, lambda pipe: self.record_in(pipe, result))
        if created[0]:
            self.announce([result])
        return result if created[0] else self.result(result.job_id) or result

    def announce(self, results: Sequence[Result]) -> None:
        """After :meth:`record_in` stored ``results``: with replication, wait for a replica to
        hold them, then wake their waiters (without, ``record.lua`` already woke them)."""
        if self._replication is None or not results:
            return
        self._replication.settle()
        pipe = self._client.pipeline(transaction=False)
        for result in results:
            pipe.publish(self._keys.result(result.job_id), result_meta(result))
        with redis_errors("publishing results"):
            pipe.execute()

    def record_in(self, pipe: redis.client.Pipeline, result: Result) -> None:
        """Queue :meth:`record` on ``pipe``: its first reply is 1 when this result stands
        (else read the one that does with :meth:`result`). Run the pipeline with
        :func:`lanes.stores.scripts.execute_with_scripts`."""
        keys = [self._keys.result(result.job_id)]
        now = "0" if self._replication else "1"
        queue_script(pipe, self._scripts.record, keys, [result_meta(result), self._ttl_s, now])
        self._forget_in(pipe, result.job_id)

    def _forget_in(self, pipe: redis.client.Pipeline, job_id: str) -> None:
        keys = [self._keys.owner(job_id), *self._pending_keys()]
        queue_script(pipe, self._scripts.forget, keys, [job_id])

    def backlog(self) -> dict[str, int]:
        """Unfinished jobs by lane (queue): their next message is queued on it or waiting in
        one of its workers."""
        with redis_errors("reading the backlog"):
            raw = self._client.hgetall(self._keys.backlog())
        return {text(lane): int(text(count)) for lane, count in raw.items()}

    def charge(self, job_id: str, step: int, attempt: int, cost_usd: float) -> bool:
        with redis_errors(f"charging job {job_id}"):
            pipe = self._client.pipeline(transaction=False)
            self.charge_in(pipe, job_id, step, attempt, cost_usd)
            return bool(pipe.execute()[0])

    def charge_in(
        self, pipe: redis.client.Pipeline, job_id: str, step: int, attempt: int, cost_usd: float
    ) -> None:
        """Queue :meth:`charge` on ``pipe``; its first reply is 0 when already charged."""
        key = self._keys.charges(job_id)
        pipe.hsetnx(key, f"{step}:{attempt}", repr(cost_usd))
        pipe.expire(key, self._ttl_s)

    def charges(self, job_id: str) -> dict[str, float]:
        with redis_errors(f"reading the charges of job {job_id}"):
            raw = self._client.hgetall(self._keys.charges(job_id))
        return {text(k): float(text(v)) for k, v in raw.items()}

    def next_call(self, job_id: str, step: int, attempt: int) -> int:
        with redis_errors(f"numbering a call of job {job_id}"):
            return self.start_call(job_id, f"{step}:{attempt}", "", "")

    def start_call(self, job_id: str, field: str, events_key: str, event_json: str) -> int:
        """:meth:`next_call`, also pushing ``event_json`` (a ledger event without its
        ``call``, "" for none) onto ``events_key`` with the number (``call_start.lua``)."""
        keys = [self._keys.calls(job_id), events_key or self._keys.calls(job_id),
                self._keys.cancelled(job_id)]  # fmt: skip
        found = self._scripts.call_start(keys=keys, args=[field, self._ttl_s, event_json])
        return int(found)

    # -- callers --------------------------------------------------------------------------------
    def results(self, job_ids: Sequence[str]) -> list[Result | None]:
        if not job_ids:
            return []
        with redis_errors("reading results"):
            raws = self._client.mget([self._keys.result(job_id) for job_id in job_ids])
        return [parse_result(raw) for raw in raws]

    def waiting_on(self, job_ids: Sequence[str]) -> dict[str, str]:
        if not job_ids:
            return {}
        with redis_errors("reading pending jobs"):
            raws = self._client.hmget(self._keys.pending(), list(job_ids))
        return {
            job_id: str(json.loads(text(raw))["queue"])
            for job_id, raw in zip(job_ids, raws, strict=True)
            if raw
        }

    def cancel(self, failures: Sequence[Result]) -> list[Cancelled]:
        """The mark first, then the result: a worker that numbers its call after the mark
        finds it; one that numbered it before is already calling (and is billed)."""
        if not failures:
            return []

        def build(pipe: redis.client.Pipeline) -> None:
            for failure in failures:
                pipe.set(self._keys.cancelled(failure.job_id), "1", ex=self._ttl_s)
                self.record_in(pipe, failure)
                pipe.hvals(self._keys.calls(failure.job_id))

        with redis_errors("cancelling jobs"):
            replies = execute_with_scripts(self._client, build)
        per_job = len(replies) // len(failures)
        done = []
        for i, failure in enumerate(failures):
            reply = replies[i * per_job : (i + 1) * per_job]
            started = sum(int(text(n)) for n in reply[-1])
            done.append(Cancelled(failure.job_id, bool(reply[1]), started))
        self.announce([f for f, d in zip(failures, done, strict=True) if d.ended])
        return done

    # -- the janitor ----------------------------------------------------------------------------
    def quiet_since(self, cutoff_s: float) -> dict[str, PendingEntry]:
        with redis_errors("reading pending jobs"):
            found = self._client.zrangebyscore(self._keys.pending_since(), "-inf", cutoff_s)
            ids = [text(i) for i in found]
            if not ids:
                return {}
            raws = self._client.hmget(self._keys.pending(), ids)
        entries: dict[str, PendingEntry] = {}
        for job_id, raw in zip(ids, raws, strict=True):
            if raw:
                entries[job_id] = json.loads(text(raw))
        return entries

    def touch(self, job_ids: Iterable[str], now_s: float) -> None:
        ids = list(job_ids)
        if ids:
            with redis_errors("touching pending jobs"):
                self._client.zadd(self._keys.pending_since(), dict.fromkeys(ids, now_s), xx=True)

    def now_s(self) -> float:
        with redis_errors("reading the server time"):
            seconds, micros = self._client.time()
        return server_time_s(seconds, micros)
