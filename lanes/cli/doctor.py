"""``lanes doctor``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table
from rich.text import Text

from lanes.cli.app import app, console, foreign, print_json, state
from lanes.kernel.errors import ConfigError

if TYPE_CHECKING:
    from lanes.ops.check import Check

_STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red"}


@app.command()
def doctor(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="One JSON object.")
) -> None:
    """Check the config, Redis (reachable, AOF, noeviction), each lane's key and endpoint,
    the ledger's database and clock skew; print what to fix; exit 1 if something is wrong."""
    from lanes.ops.doctor import config_error_check, failures, report_json, run_checks

    st = state(ctx)
    try:
        config = st.config()
        config_path = st.config_file()
    except ConfigError as exc:
        # A config that does not load is the doctor's first finding, not a usage error.
        checks = [config_error_check(exc)]
    else:
        checks = run_checks(config, config_path)
    if as_json:
        print_json(report_json(checks))
    else:
        console.print(doctor_table(checks))
        console.print(summary_line(checks), highlight=False)
    if failures(checks):
        raise typer.Exit(1)


def doctor_table(checks: list[Check]) -> Table:
    """One row per check: its status in colour, then what was seen and what to do."""
    table = Table(title="lanes doctor")
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("detail")
    table.add_column("fix")
    for check in checks:
        table.add_row(
            Text(check.status, style=_STYLES[check.status]),
            foreign(check.name),
            foreign(check.detail),
            foreign(check.fix),
        )
    return table


def summary_line(checks: list[Check]) -> Text:
    """What the exit code says, in words."""
    failed = sum(check.status == "fail" for check in checks)
    warned = sum(check.status == "warn" for check in checks)
    if failed:
        what = "1 problem: fix it" if failed == 1 else f"{failed} problems: fix them"
        return Text(f"{what} and run lanes doctor again", style="bold red")
    if warned:
        noun = "warning" if warned == 1 else "warnings"
        return Text(f"all good ({warned} {noun} worth a look)", style="green")
    return Text("all good", style="green")
