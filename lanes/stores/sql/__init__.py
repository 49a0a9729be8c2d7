"""The ledger on SQL: SQLite by default (``<state_dir>/ledger.db``), PostgreSQL when
``database_url`` says so.

:func:`open_ledger` is the one way in: it builds the engine (short connect timeout; SQLite in
WAL mode with a 30 s busy timeout, so several worker processes write one file), checks the
database answers, migrates it to the newest schema and returns a :class:`SqlLedger`. Anything
that keeps it from doing so is an :class:`~lanes.kernel.errors.InfrastructureError` (exit 5) naming
the database, its password masked, and what to fix.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError

from lanes.kernel.config import Config
from lanes.kernel.errors import ConfigError, InfrastructureError
from lanes.kernel.redact import mask_url_secrets
from lanes.stores.sql.ledger import SqlLedger, db_errors, fix_for
from lanes.stores.sql.migrations import current, head, upgrade
from lanes.stores.sql.schema import SQLITE_BEGIN

CONNECT_TIMEOUT_S = 5
BUSY_TIMEOUT_MS = 30_000
_PG_PREFIXES = ("postgresql://", "postgres://")
_PG_DRIVER = "postgresql+psycopg://"


def database_url(config: Config) -> str:
    """The ledger's SQLAlchemy URL: ``database_url`` with ``postgresql://`` (or
    ``postgres://``) on the psycopg 3 driver, else SQLite at ``<state_dir>/ledger.db``
    (its directory created). :class:`~lanes.kernel.errors.ConfigError` (exit 2) for a
    ``database_url`` that is no URL at all."""
    if config.database_url:
        _check_url(config.database_url)
        for prefix in _PG_PREFIXES:
            if config.database_url.startswith(prefix):
                return _PG_DRIVER + config.database_url[len(prefix) :]
        return config.database_url
    path = Path(config.state_dir).expanduser() / "ledger.db"
    _make_parent(path, f"sqlite:///{path}")
    return f"sqlite:///{path.resolve()}"


def _check_url(url: str) -> None:
    """ConfigError naming the setting when ``url`` does not parse (a bad port, an unclosed
    ``[``), showing it with everything before its host masked: a password is never echoed,
    even one with an unescaped ``@`` in it."""
    try:
        make_url(url)
    except (ArgumentError, ValueError) as exc:
        scheme, sep, rest = url.partition("://")
        shown = f"{scheme}{sep}***@{rest.rpartition('@')[2]}" if "@" in rest else url
        raise ConfigError(
            f"{shown!r} is not a database URL ({_reason(exc)})",
            key="database_url (LANES_DATABASE_URL)",
            fix="write sqlite:///path/ledger.db or postgresql://user@host:5432/dbname",
        ) from None


def _reason(exc: Exception) -> str:
    """Why SQLAlchemy refused a URL, without echoing the URL back (it holds the password)."""
    if isinstance(exc, ArgumentError):
        return "SQLAlchemy cannot parse it"
    return "its port is not a number" if "int()" in str(exc) else "it does not parse"


def _make_parent(path: Path, url: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InfrastructureError(
            f"ledger database {url}: cannot create {path.parent}: {exc.strerror}; {fix_for(url)}"
        ) from exc


def open_ledger(config: Config, *, migrate: bool = True) -> SqlLedger:
    """The ledger of ``config``, its schema migrated to the newest revision (``migrate``
    False: refuse a database that is not there yet rather than change it)."""
    url = database_url(config)
    engine = _engine(url)
    shown = mask_url_secrets(url)
    try:
        with db_errors(shown):
            _prepare(engine, shown, migrate)
    except BaseException:
        engine.dispose()
        raise
    return SqlLedger(engine, config.learning)


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                _make_parent(Path(parsed.database), mask_url_secrets(url))
            return _sqlite_engine(url)
        args = {"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "lanes"}
        return create_engine(url, connect_args=args, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise InfrastructureError(
            f"ledger database {mask_url_secrets(url)}: {exc}; write sqlite:///path/ledger.db "
            "or postgresql://user@host:5432/dbname in database_url (or LANES_DATABASE_URL)"
        ) from exc


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own BEGIN handling is off; _begin below starts every transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _wal(cursor)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _wal(cursor: Any) -> None:
    """Put the database in WAL mode (it stays so). Switching takes an exclusive lock and
    SQLite answers "database is locked" at once, without its busy timeout, when processes
    opening a new file race to switch it: so retry, within the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _prepare(engine: Engine, shown: str, migrate: bool) -> None:
    """Check the database answers, then migrate it (or check it is migrated)."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        at = current(conn)
    newest = head()
    if at == (newest,):
        return
    if not migrate:
        raise InfrastructureError(
            f"ledger database {shown} is at schema {', '.join(at) or 'none'}, not {newest}; "
            "open it once with migrations on (any lanes worker does) or point database_url "
            "(or LANES_DATABASE_URL) at a migrated one"
        )
    try:
        upgrade(engine)
    except CommandError as exc:
        raise InfrastructureError(
            f"ledger database {shown} cannot be migrated to schema {newest}: {exc} (a newer "
            "lanes may have migrated it: upgrade lanes, or use another database_url)"
        ) from exc


__all__ = ["SqlLedger", "database_url", "open_ledger"]
