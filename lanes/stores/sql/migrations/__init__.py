"""The ledger's schema history (Alembic), run from code: no ``alembic.ini`` at run time.

:func:`upgrade` brings a database to the newest revision and is safe when several processes
start at once: it takes a lock (PostgreSQL: a transaction-level advisory lock; SQLite: the
database's write lock, via ``BEGIN IMMEDIATE``), re-reads the revision under it and runs the
missing migrations in that same transaction (both databases have transactional DDL), so the
first process migrates and the others find the work done. ``script.py.mako`` is only needed
to write a new revision, never to run one.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from lanes.kernel.errors import InfrastructureError
from lanes.stores.sql.schema import WRITE

VERSION_TABLE = "lanes_ledger_version"
"""Not Alembic's default ``alembic_version``: the ledger may share a database with an app
that has its own migrations."""
ADVISORY_LOCK = 0x6C616E6573  # "lanes": one PostgreSQL advisory lock id for every upgrade
LOCATION = Path(__file__).resolve().parent


def alembic_config(connection: Connection | None = None, url: str | None = None) -> AlembicConfig:
    """An Alembic config for this directory, on ``connection`` (or ``url``)."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(LOCATION).replace("%", "%%"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head() -> str:
    """The newest revision this lanes knows."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:
        raise InfrastructureError(
            f"lanes is installed without its ledger migrations (none under {LOCATION}); "
            "reinstall lanes"
        )
    return revision


def current(connection: Connection) -> tuple[str, ...]:
    """The revisions the database is at (empty before the first migration)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return tuple(context.get_current_heads())


def upgrade(engine: Engine) -> None:
    """Migrate ``engine``'s database to :func:`head` (a no-op when it is there already)."""
    target = head()
    with engine.connect() as connection:
        if current(connection) == (target,):
            return
    with engine.connect() as connection:
        connection.execution_options(**WRITE)
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": ADVISORY_LOCK})
            command.upgrade(alembic_config(connection), "head")
