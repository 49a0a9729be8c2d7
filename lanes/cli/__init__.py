"""The lanes command line: ``lanes --help``."""

from __future__ import annotations

import sys

from rich.markup import escape

from kernel.errors import LanesError
from lanes.cli import (  # noqa: F401  (importing registers the commands)
    batch,
    bench_budget,
    bench_chaos,
    bench_classify,
    bench_difficulty,
    bench_ratelimit,
    bench_route,
    bench_spine,
    books,
    compare,
    doctor,
    flower,
    mcp,
    metrics,
    pipeline,
    review,
    routing,
    run,
    serve,
    status,
    train,
)
from lanes.cli.app import app, err_console, flow_help

flow_help(app)


def main() -> None:
    """Entry point: run the app, turn a LanesError into a message and its exit code."""
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
