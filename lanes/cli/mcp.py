"""``lanes mcp``: serve lanes to Claude Code (or any MCP client) over stdio.

The command imports the MCP SDK and the client when it runs, so ``lanes --help`` stays quick.
"""

from __future__ import annotations

import typer

from lanes.cli.app import app, state
from lanes.mcp.args import MAX_WAITS


@app.command("mcp")
def mcp_command(
    ctx: typer.Context,
    max_waits: int = typer.Option(
        MAX_WAITS,
        "--max-waits",
        min=1,
        max=1024,
        help="Most tool calls waiting for jobs at once (ask_*, review, result with wait_s);"
        " more wait their turn, their timeout_s running.",
    ),
) -> None:
    """Serve lanes as MCP tools over stdio, for Claude Code (see the README): ask_local_model,
    ask_coding_model, list_models, route, submit, result, review.

    stdout carries the protocol only; logs go to stderr. Redis is connected at the first tool
    call, so the server starts even while the deployment is down. It exits when stdin closes,
    and at once on SIGTERM or Ctrl-C.
    """
    from lanes.mcp.server import serve_stdio

    serve_stdio(state(ctx).config(), max_waits=max_waits)
