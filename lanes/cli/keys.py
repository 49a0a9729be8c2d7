"""``lanes keys create``, ``list`` and ``revoke``: the keys callers of the HTTP front door
(``lanes serve``) authenticate with, each mapped to a project and optionally a user.

These commands open the ledger directly, without first draining the events Redis holds for
it: keys are not events, so a deployment whose Redis is down can still issue and revoke
them. A database that cannot be used exits 5, as for the reports; bad input exits 2 and
touches nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from lanes.cli.app import app, console, err_console, foreign, print_json, state
from lanes.kernel.errors import JobError

if TYPE_CHECKING:
    from lanes.stores.ledger import KeyRow
    from lanes.stores.sql import SqlLedger

keys_app = typer.Typer(
    help="API keys for the HTTP front door: issue, list and revoke them.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")

NONE = "\u2013"
"""What a table shows where there is no value (JSON: null)."""


@contextmanager
def _ledger(ctx: typer.Context) -> Iterator[SqlLedger]:
    from lanes.stores.sql import open_ledger

    ledger = open_ledger(state(ctx).config())
    try:
        yield ledger
    finally:
        ledger.close()


@keys_app.command("create")
def create(
    ctx: typer.Context,
    project: str = typer.Option(..., "--project", help="The project its requests bill to."),
    user: str | None = typer.Option(None, "--user", help="The user its requests bill to."),
    name: str | None = typer.Option(None, "--name", help="A label, to tell keys apart."),
) -> None:
    """Issue a key for a project (and a user): printed once, alone on the last line."""
    from lanes.stores.ledger import check_key_owner

    check_key_owner(project, user, name)
    with _ledger(ctx) as ledger:
        issued = ledger.create_key(project, user, name, time.time())
    owner = f"project {project}" + (f", user {user}" if user is not None else "")
    console.print(
        foreign(f"key {issued.key_id} for {owner}: it is shown only this once (the ledger keeps "
                "only its SHA-256 digest), so store it now; `lanes keys revoke` ends it"),
        soft_wrap=True,
    )  # fmt: skip
    print(issued.key, flush=True)


@keys_app.command("list")
def list_keys(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="One JSON object."),
) -> None:
    """Every key issued: id, project, user, label, last four characters, created and revoked
    times (never a key itself)."""
    with _ledger(ctx) as ledger:
        rows = ledger.keys()
    if as_json:
        print_json({"keys": [_key_json(row) for row in rows]})
        return
    if not rows:
        console.print("no keys: `lanes keys create --project P` issues one")
        return
    table = Table(title="API keys")
    for col in ("id", "project", "user", "name", "key", "created", "revoked"):
        table.add_column(col, no_wrap=True)
    for row in rows:
        table.add_row(
            row.key_id, foreign(row.project), foreign(row.user or NONE), foreign(row.name or NONE),
            f"\u2026{row.last4}", _when(row.created_at), _when(row.revoked_at),
        )  # fmt: skip
    console.print(table)


def _key_json(row: KeyRow) -> dict[str, Any]:
    shown = row.model_dump()
    shown["created_at"] = _iso(row.created_at)
    shown["revoked_at"] = None if row.revoked_at is None else _iso(row.revoked_at)
    return shown


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def _when(at: float | None) -> str:
    return NONE if at is None else datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: str = typer.Argument(..., help="The key's id, key_ and 12 hex digits."),
) -> None:
    """Revoke a key by its id (`lanes keys list` shows them): it authenticates nobody from then
    on; exit 1 when there is no such key."""
    _check_key_id(key_id)
    with _ledger(ctx) as ledger:
        found = ledger.revoke_key(key_id, time.time())
    if not found:
        # key_id is checked: key_ and hex digits, nothing rich could read as markup
        err_console.print(f"[bold red]error:[/] no key {key_id}; `lanes keys list` shows the ids")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}: it no longer authenticates", highlight=False)


def _check_key_id(key_id: str) -> None:
    """JobError (exit 2) unless ``key_id`` is a key's id; a key given in its place is not
    echoed back."""
    from lanes.stores.ledger import KEY_ID, KEY_PREFIX

    if KEY_ID.fullmatch(key_id):
        return
    if key_id.startswith(KEY_PREFIX):
        raise JobError(
            "that is a key, not its id: give the id (key_ and 12 hex digits) that "
            "`lanes keys list` shows for it"
        )
    raise JobError(
        f"{key_id!r} is not a key id: give key_ and 12 hex digits, as `lanes keys list` shows them"
    )
