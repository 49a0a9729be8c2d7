"""The API keys' contract, on the SQL ledger (SQLite and PostgreSQL, as in
``test_sql_ledger``) and in memory: issue, authenticate, list, revoke, and what is stored."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, select

from lanes.kernel.config import Config
from lanes.kernel.errors import JobError
from lanes.stores.ledger import KEY_ID, IssuedKey, KeyRow, KeyStore
from lanes.stores.memory.ledger import MemoryKeys
from lanes.stores.sql import database_url, open_ledger
from lanes.stores.sql.migrations import alembic_config, current, head
from lanes.stores.sql.schema import api_keys
from tests.pg import empty_pg_database, fresh_pg_database
from tests.stores.test_sql_ledger import BACKENDS, with_database

STORES = (*BACKENDS, "memory")
SQL = pytest.mark.parametrize("backend", BACKENDS)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_pg_database() as url:
        yield url


def sql_config(backend: str, request: pytest.FixtureRequest, tmp_path: Path,
               example_config: Config) -> Config:  # fmt: skip
    if backend == "sqlite":
        return with_database(example_config, f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path)
    url: str = request.getfixturevalue("pg_url")
    empty_pg_database(url)
    return with_database(example_config, url, tmp_path)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path, example_config: Config
          ) -> Iterator[KeyStore]:  # fmt: skip
    if request.param == "memory":
        yield MemoryKeys()
        return
    ledger = open_ledger(sql_config(request.param, request, tmp_path, example_config))
    yield ledger
    ledger.close()


@pytest.fixture
def config(request: pytest.FixtureRequest, backend: str, tmp_path: Path,
           example_config: Config) -> Config:  # fmt: skip
    return sql_config(backend, request, tmp_path, example_config)


def stored_rows(config: Config) -> list[dict[str, Any]]:
    """Every row of ``api_keys``, read with an engine of the test's own."""
    engine = create_engine(database_url(config))
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(select(api_keys))]
    engine.dispose()
    return rows


# -- issue and authenticate -----------------------------------------------------------------------
def test_keys_a_new_key_authenticates_as_its_owner(store: KeyStore) -> None:
    issued = store.create_key("acme", "ann", "ci", time.time())
    assert issued.key.startswith("lanes-") and len(issued.key) == len("lanes-") + 43
    assert KEY_ID.fullmatch(issued.key_id)
    owner = store.key_owner(issued.key)
    assert owner is not None
    assert (owner.key_id, owner.project, owner.user) == (issued.key_id, "acme", "ann")


def test_keys_each_key_is_new_and_speaks_for_its_own_owner(store: KeyStore) -> None:
    now = time.time()
    first = store.create_key("acme", None, None, now)
    second = store.create_key("équipe", "zoë", None, now)
    assert first.key != second.key and first.key_id != second.key_id
    one, two = store.key_owner(first.key), store.key_owner(second.key)
    assert one is not None and (one.project, one.user) == ("acme", None)
    assert two is not None and (two.project, two.user, two.key_id) == (
        "équipe", "zoë", second.key_id,
    )  # fmt: skip


@pytest.mark.parametrize(
    "wrong",
    [
        "",
        "lanes-",
        "lanes-" + "A" * 43,
        "Bearer lanes-x",
        "lanes-" + "é" * 43,
        "lanes-" + "x" * 10_000,
        "lanes-\x00",
    ],
)
def test_keys_a_wrong_key_authenticates_nobody(store: KeyStore, wrong: str) -> None:
    store.create_key("acme", None, None, time.time())
    assert store.key_owner(wrong) is None


def test_keys_a_key_one_character_off_authenticates_nobody(store: KeyStore) -> None:
    key = store.create_key("acme", None, None, time.time()).key
    off = key[:-1] + ("B" if key[-1] != "B" else "C")
    assert store.key_owner(off) is None
    assert store.key_owner(key.upper() if key.upper() != key else key.lower()) is None
    assert store.key_owner(key) is not None


# -- revoke ---------------------------------------------------------------------------------------
def test_keys_a_revoked_key_authenticates_nobody_the_others_still_do(store: KeyStore) -> None:
    now = time.time()
    gone = store.create_key("acme", "ann", None, now)
    kept = store.create_key("acme", "bob", None, now)
    assert store.revoke_key(gone.key_id, now + 10) is True
    assert store.key_owner(gone.key) is None
    assert store.key_owner(kept.key) is not None
    assert store.revoke_key(gone.key_id, now + 20) is True  # already revoked: still there
    listed = store.keys()
    [row] = [found for found in listed if found.key_id == gone.key_id]
    assert row.revoked_at == pytest.approx(now + 10, abs=1e-3)  # the first revocation kept


def test_keys_revoking_an_unknown_id_says_so(store: KeyStore) -> None:
    issued = store.create_key("acme", None, None, time.time())
    assert store.revoke_key("key_000000000000", time.time()) is False
    assert store.revoke_key(issued.key, time.time()) is False  # a key is not an id
    assert store.key_owner(issued.key) is not None


# -- listing and storage --------------------------------------------------------------------------
def test_keys_the_list_shows_every_key_but_never_a_key_or_its_digest(store: KeyStore) -> None:
    now = time.time()
    issued = [store.create_key("acme", "ann", "laptop", now),
              store.create_key("beta", None, None, now + 1)]  # fmt: skip
    store.revoke_key(issued[1].key_id, now + 2)
    rows = store.keys()
    assert [r.key_id for r in rows] == [i.key_id for i in issued]  # oldest first
    assert set(KeyRow.model_fields) == {
        "key_id", "project", "user", "name", "last4", "created_at", "revoked_at",
    }  # fmt: skip
    first, second = rows
    assert (first.project, first.user, first.name, first.last4) == (
        "acme", "ann", "laptop", issued[0].key[-4:],
    )  # fmt: skip
    assert first.created_at == pytest.approx(now, abs=1e-3) and first.revoked_at is None
    assert second.revoked_at == pytest.approx(now + 2, abs=1e-3)
    secrets = {i.key for i in issued} | {_sha256(i) for i in issued}
    for row in rows:
        assert not secrets & {str(v) for v in row.model_dump().values()}
        assert not any(s in row.model_dump_json() for s in secrets)


def _sha256(issued: IssuedKey) -> str:
    return hashlib.sha256(issued.key.encode()).hexdigest()


@SQL
def test_keys_sql_stores_the_digest_never_the_key(config: Config) -> None:
    ledger = open_ledger(config)
    issued = ledger.create_key("acme", "ann", "ci", 1_800_000_000.0)
    ledger.close()
    [row] = stored_rows(config)
    assert row["digest"] == _sha256(issued)
    assert row["key_id"] == issued.key_id and row["last4"] == issued.key[-4:]
    assert (row["project"], row["user_name"], row["name"]) == ("acme", "ann", "ci")
    assert row["revoked_at"] is None
    assert not any(issued.key in str(value) for value in row.values())
    assert not any(issued.key[6:20] in str(value) for value in row.values())


@SQL
def test_keys_sql_keys_survive_reopening_and_the_digest_is_unique_and_indexed(
    config: Config,
) -> None:
    ledger = open_ledger(config)
    issued = ledger.create_key("acme", None, None, time.time())
    ledger.close()
    again = open_ledger(config)
    assert again.key_owner(issued.key) is not None
    again.close()
    engine = create_engine(database_url(config))
    with engine.connect() as conn:
        indexes = inspect(conn).get_indexes("api_keys")
    engine.dispose()
    assert [(i["column_names"], bool(i["unique"])) for i in indexes] == [(["digest"], True)]


def test_keys_memory_keeps_no_plaintext() -> None:
    store = MemoryKeys()
    issued = store.create_key("acme", None, None, time.time())
    assert issued.key not in repr(vars(store))
    assert _sha256(issued) in repr(vars(store))


@SQL
def test_keys_sql_migration_0003_goes_down_and_up_again(config: Config) -> None:
    open_ledger(config).close()
    engine = create_engine(database_url(config))
    for target, tables in (("0002", False), ("head", True)):
        with engine.connect() as conn, conn.begin():
            step = command.downgrade if target == "0002" else command.upgrade
            step(alembic_config(conn), target)
        with engine.connect() as conn:
            assert ("api_keys" in inspect(conn).get_table_names()) is tables
            assert current(conn) == (target if target != "head" else head(),)
    engine.dispose()


# -- what a key may be issued to ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("project", "user", "name", "says"),
    [
        ("", None, None, "project may not be empty"),
        ("   ", None, None, "project may not be empty"),
        ("p" * 129, None, None, "129 characters long; give at most 128"),
        ("acme\x1b[31m", None, None, "project 'acme\\x1b[31m' holds control characters"),
        ("acme", "ann\n", None, "user 'ann\\n' holds control characters"),
        ("acme", "", None, "user may not be empty"),
        ("acme", None, "lap\x85top", "name 'lap\\x85top' holds control characters"),
        ("acme", None, "n" * 200, "name is 200 characters long"),
        ("acme\udc80", None, None, "is not UTF-8 text"),
    ],
)
def test_keys_refuse_an_owner_that_is_no_name_and_store_nothing(
    store: KeyStore, project: str, user: str | None, name: str | None, says: str
) -> None:
    with pytest.raises(JobError, match=_escaped(says)) as caught:
        store.create_key(project, user, name, time.time())
    assert caught.value.exit_code == 2
    assert store.keys() == []


def _escaped(text: str) -> str:
    return re.escape(text)


def test_keys_take_names_up_to_128_characters(store: KeyStore) -> None:
    issued = store.create_key("p" * 128, "u" * 128, "n" * 128, time.time())
    owner = store.key_owner(issued.key)
    assert owner is not None and owner.project == "p" * 128 and owner.user == "u" * 128
