"""The lanes command line: ``lanes --help``."""

from __future__ import annotations

import sys

from rich.markup import escape

from lanes.cli import (  # noqa: F401  (importing registers the commands)
    batch,
    compare,
    doctor,
    flower,
    keys,
    mcp,
    metrics,
    pipeline,
    reports,
    review,
    routing,
    run,
    serve,
    status,
)
from lanes.cli.app import app, err_console
from lanes.kernel.errors import LanesError


def main() -> None:
    """Run the app (every command registered), turn a LanesError into a message and its exit
    code. :mod:`lanes.entry` adds the measurement commands first, when they are installed."""
    try:
        app()
    except LanesError as exc:
        # soft_wrap: one line however long, so that a log or a grep sees the whole message
        err_console.print(
            f"[bold red]error:[/] {escape(str(exc))}",
            highlight=False,
            soft_wrap=True,
            emoji=False,  # a budget named project:a:b is no emoji code
        )
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
