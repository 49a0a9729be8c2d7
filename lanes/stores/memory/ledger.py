"""The ledger hand-off queue and the API keys in this process's memory (tests; routing
without Redis or a database)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from lanes.stores.ledger import (
    IssuedKey,
    KeyOwner,
    KeyRow,
    LedgerEvent,
    check_key_owner,
    event_json,
    key_digest,
    new_key,
    new_key_id,
)


class MemoryLedgerSink:
    """A list of JSON events with the drainer's side of :class:`RedisLedgerSink`."""

    def __init__(self) -> None:
        self._events: list[str] = []
        self._lock = threading.Lock()
        self._held = False

    def emit(self, events: Sequence[LedgerEvent]) -> None:
        with self._lock:
            self._events.extend(event_json(e) for e in events)

    def oldest(self, count: int) -> list[str]:
        with self._lock:
            return self._events[:count]

    def drop_oldest(self, count: int) -> None:
        with self._lock:
            del self._events[:count]

    def backlog(self) -> int:
        with self._lock:
            return len(self._events)

    def lock(self, ttl_s: float) -> str | None:
        with self._lock:
            if self._held:
                return None
            self._held = True
            return "held"

    def unlock(self, token: str) -> None:
        with self._lock:
            self._held = False


class MemoryKeys:
    """:class:`~lanes.stores.ledger.KeyStore` in a dict: digest to the key's row, as the SQL
    ledger keeps them (no plaintext)."""

    def __init__(self) -> None:
        self._rows: dict[str, KeyRow] = {}
        self._lock = threading.Lock()

    def create_key(self, project: str, user: str | None, name: str | None, at: float) -> IssuedKey:
        check_key_owner(project, user, name)
        key = new_key()
        digest = key_digest(key)
        assert digest is not None  # new_key() makes a well-formed key
        row = KeyRow(key_id=new_key_id(), project=project, user=user, name=name,
                     last4=key[-4:], created_at=at, revoked_at=None)  # fmt: skip
        with self._lock:
            self._rows[digest] = row
        return IssuedKey(key_id=row.key_id, key=key, project=project, user=user, name=name,
                         created_at=at)  # fmt: skip

    def key_owner(self, key: str) -> KeyOwner | None:
        digest = key_digest(key)
        if digest is None:
            return None
        with self._lock:
            row = self._rows.get(digest)
        if row is None or row.revoked_at is not None:
            return None
        return KeyOwner(key_id=row.key_id, project=row.project, user=row.user)

    def keys(self) -> list[KeyRow]:
        with self._lock:
            rows = list(self._rows.values())
        return sorted(rows, key=lambda r: (r.created_at, r.key_id))

    def revoke_key(self, key_id: str, at: float) -> bool:
        with self._lock:
            for digest, row in self._rows.items():
                if row.key_id == key_id:
                    if row.revoked_at is None:
                        self._rows[digest] = row.model_copy(update={"revoked_at": at})
                    return True
        return False
