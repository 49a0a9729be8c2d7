"""The ledger's hand-off queue in Redis: a list of JSON events, pushed by workers and
dispatchers, drained into the database by :mod:`lanes.workers.services.ledger_drain`.

A list, not a stream: one drainer at a time (a lock with a TTL) reads the oldest events with
``LRANGE``, writes them to the database in one transaction, then ``LTRIM``s them. A drainer
that dies between the two leaves them in the list; the next one writes them again, which
changes nothing (every ledger write is idempotent per event identity).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import redis

from lanes.stores.keys import Keys
from lanes.stores.ledger import LedgerEvent, event_json
from lanes.stores.scripts import redis_errors, text

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLedgerSink:
    """:class:`lanes.stores.ledger.LedgerSink` on Redis, and the drainer's side of it."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._key = keys.ledger_events()
        self._lock_key = keys.ledger_lock()
        self._release = client.register_script(_RELEASE)

    @property
    def key(self) -> str:
        return self._key

    def emit(self, events: Sequence[LedgerEvent]) -> None:
        if not events:
            return
        with redis_errors("handing off ledger events"):
            self._client.rpush(self._key, *[event_json(e) for e in events])

    def emit_in(self, pipe: redis.client.Pipeline, events: Sequence[LedgerEvent]) -> None:
        """Queue :meth:`emit` on ``pipe`` (it then goes with the pipeline's other writes)."""
        if events:
            pipe.rpush(self._key, *[event_json(e) for e in events])

    # -- the drainer's side -------------------------------------------------------------------
    def oldest(self, count: int) -> list[str]:
        with redis_errors("reading ledger events"):
            return [text(raw) for raw in self._client.lrange(self._key, 0, count - 1)]

    def drop_oldest(self, count: int) -> None:
        with redis_errors("trimming ledger events"):
            self._client.ltrim(self._key, count, -1)

    def backlog(self) -> int:
        with redis_errors("counting ledger events"):
            return int(self._client.llen(self._key))

    def lock(self, ttl_s: float) -> str | None:
        """A token if this process may drain now (nobody else does), else None."""
        token = uuid.uuid4().hex
        with redis_errors("taking the ledger lock"):
            taken = self._client.set(self._lock_key, token, nx=True, px=int(ttl_s * 1000))
        return token if taken else None

    def unlock(self, token: str) -> None:
        with redis_errors("releasing the ledger lock"):
            self._release(keys=[self._lock_key], args=[token])
