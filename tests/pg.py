"""A real PostgreSQL for the tests that need one (127.0.0.1:5432, user ``postgres``, trust
auth): absent on a laptop, the test is skipped and says why; with ``$CI`` set it fails."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


def pg_admin() -> psycopg.Connection[Any]:
    """An autocommit connection to the server; skips the test (fails it under CI) without."""
    try:
        return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL not reachable at 127.0.0.1:5432: {' '.join(str(exc).split())}"
        print(reason)
        if os.environ.get("CI"):
            pytest.fail(f"{reason} ($CI is set: the PostgreSQL cases must run)")
        pytest.skip(reason)


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new, empty database ``lanes_test_<random>``; its URL, dropped afterwards."""
    name = f"lanes_test_{uuid.uuid4().hex[:12]}"
    with pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_pg_database(url: str) -> None:
    """Drop everything in ``url``'s database, the migrations' version table included."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
