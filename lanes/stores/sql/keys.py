"""The API keys on SQL: one function per operation, each on a connection the caller opened.

A key is found by its digest (the unique index), then the digest read back is compared with
:func:`~lanes.stores.ledger.same_digest` (constant time). The index lookup itself takes as
long as the database makes it, which can tell an attacker something about the digest they
sent and nothing about any key: a digest cannot be turned back into a key.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from lanes.stores.ledger import (
    IssuedKey,
    KeyOwner,
    KeyRow,
    key_digest,
    new_key,
    new_key_id,
    same_digest,
)
from lanes.stores.sql.schema import api_keys, as_utc, utc

_SHOWN = (
    api_keys.c.key_id,
    api_keys.c.project,
    api_keys.c.user_name,
    api_keys.c.name,
    api_keys.c.last4,
    api_keys.c.created_at,
    api_keys.c.revoked_at,
)
"""What a listing reads: everything but the digest."""


def create(
    conn: Connection, project: str, user: str | None, name: str | None, at: float
) -> IssuedKey:
    """Store a new key for an owner :func:`~lanes.stores.ledger.check_key_owner` passed."""
    key = new_key()
    issued = IssuedKey(
        key_id=new_key_id(), key=key, project=project, user=user, name=name, created_at=at
    )
    conn.execute(
        insert(api_keys).values(
            key_id=issued.key_id,
            digest=key_digest(key),
            last4=key[-4:],
            project=project,
            user_name=user,
            name=name,
            created_at=utc(at),
        )
    )
    return issued


def owner(conn: Connection, key: str) -> KeyOwner | None:
    digest = key_digest(key)
    if digest is None:
        return None
    c = api_keys.c
    found = select(c.key_id, c.project, c.user_name, c.digest).where(
        c.digest == digest, c.revoked_at.is_(None)
    )
    row = conn.execute(found).first()
    if row is None or not same_digest(row.digest, digest):
        return None
    return KeyOwner(key_id=row.key_id, project=row.project, user=row.user_name)


def listing(conn: Connection) -> list[KeyRow]:
    stmt = select(*_SHOWN).order_by(api_keys.c.created_at, api_keys.c.key_id)
    return [_row(row._mapping) for row in conn.execute(stmt)]


def _row(row: Any) -> KeyRow:
    revoked = row["revoked_at"]
    return KeyRow(
        key_id=row["key_id"],
        project=row["project"],
        user=row["user_name"],
        name=row["name"],
        last4=row["last4"],
        created_at=as_utc(row["created_at"]).timestamp(),
        revoked_at=None if revoked is None else as_utc(revoked).timestamp(),
    )


def revoke(conn: Connection, key_id: str, at: float) -> bool:
    c = api_keys.c
    found = conn.execute(select(c.revoked_at).where(c.key_id == key_id).with_for_update()).first()
    if found is None:
        return False
    if found.revoked_at is None:
        conn.execute(update(api_keys).where(c.key_id == key_id).values(revoked_at=utc(at)))
    return True
