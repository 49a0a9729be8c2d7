"""Re-send the message of a job that no queue holds and no worker has.

Celery's Redis transport pops a message off its queue and only then records it as held
(unacknowledged) by the worker; a worker killed between the two loses the message without a
trace. Redelivery after the visibility timeout cannot bring it back, because nothing remembers
it. lanes does: the job store (:class:`lanes.stores.jobs.JobStore`) keeps, for every
unfinished job, the message that runs next. A sweep (one process at a time, under a lock)
looks at the jobs whose entry has not changed for ``quiet_s``; those whose message is still in
a lane queue or held by a worker are only marked as seen, the others are published again. A
copy that turns out not to be lost after all is harmless: results are written once, charges
once per (job, step, attempt), and a stale hop is dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable

import redis
from celery import Celery

from lanes.broker.message import Envelope, publish
from lanes.stores.jobs import JobStore
from lanes.stores.keys import Keys
from lanes.stores.scripts import redis_errors, text

log = logging.getLogger("lanes.janitor")


class Janitor:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        jobs: JobStore,
        app: Celery,
        queues: Iterable[str],
        *,
        quiet_s: float,
        parked: Callable[[], set[str]] = set,
    ) -> None:
        """``parked``: the ids of the jobs waiting in provider batches (held, not lost)."""
        self._client = client
        self._keys = keys
        self._jobs = jobs
        self._app = app
        self._queues = list(queues)
        self._quiet_s = quiet_s
        self._parked = parked

    def sweep(self) -> list[str]:
        """One pass; returns the ids of the jobs whose message was sent again."""
        with redis_errors("taking the janitor lock"):
            if not self._client.set(self._keys.janitor_lock(), "1", nx=True, ex=60):
                return []
        try:
            return self._sweep()
        finally:
            with redis_errors("releasing the janitor lock"):
                self._client.delete(self._keys.janitor_lock())

    def _sweep(self) -> list[str]:
        now_s = self._jobs.now_s()
        quiet = self._jobs.quiet_since(now_s - self._quiet_s)
        if not quiet:
            return []
        present = self._messages_present(set(quiet))
        self._jobs.touch([job for job in quiet if job in present], now_s)
        lost = [job for job in quiet if job not in present]
        for job in lost:
            entry = quiet[job]
            log.warning("job %s: its message was lost; sending it again to %s", job,
                        entry["queue"])  # fmt: skip
            publish(self._app, Envelope.model_validate(entry["envelope"]), redelivered=True)
        self._jobs.touch(lost, now_s)
        return lost

    def _messages_present(self, wanted: set[str]) -> set[str]:
        """Which of ``wanted`` have a message in a lane queue or held by a worker."""
        found: set[str] = set()
        with redis_errors("scanning queues"):
            for queue in self._queues:
                for name in self._keys.queue_lists(queue):
                    for raw in self._client.lrange(name, 0, -1):
                        found.add(_task_id(raw))
            for raw in self._client.hvals(self._keys.unacked()):
                held = json.loads(text(raw))
                found.add(_task_id(held[0]) if isinstance(held, list) else "")
        return (found | self._parked()) & wanted


def _task_id(raw: object) -> str:
    """The Celery task id (= job id) of a raw kombu message (JSON text or a decoded dict)."""
    message = raw if isinstance(raw, dict) else json.loads(text(raw))
    return str(message.get("headers", {}).get("id", ""))
