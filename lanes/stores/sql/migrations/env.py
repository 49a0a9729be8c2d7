"""Alembic's environment for the ledger.

lanes runs it through :func:`lanes.stores.sql.migrations.upgrade`, which hands in a
connection already inside the transaction (and lock) the upgrade must happen in. A developer
can also run it with ``sqlalchemy.url`` set on :func:`~lanes.stores.sql.migrations.alembic_config`
(e.g. to autogenerate a revision against a scratch database).
"""

from __future__ import annotations

from alembic import context
from alembic.util import CommandError
from sqlalchemy import Connection, create_engine

from lanes.stores.sql.migrations import VERSION_TABLE
from lanes.stores.sql.schema import METADATA


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=METADATA, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise CommandError("no database: set sqlalchemy.url or hand in a connection")
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        _run(connection)
        connection.commit()
    engine.dispose()


_main()
