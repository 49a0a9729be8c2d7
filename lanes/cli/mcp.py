"""``lanes mcp``: serve lanes to Claude Code (or any MCP client) over stdio.

The command imports the MCP SDK and the client when it runs, so ``lanes --help`` stays quick.
"""

from __future__ import annotations

import typer

from lanes.cli.app import app, state


@app.command("mcp")
def mcp_command(ctx: typer.Context) -> None:
    """Serve lanes as MCP tools over stdio, for Claude Code (see the README): ask_local_model,
    ask_coding_model, list_models, route, submit, result, review.

    stdout carries the protocol only; logs go to stderr. Redis is connected at the first tool
    call, so the server starts even while the deployment is down.
    """
    from lanes.mcp_server import serve_stdio

    serve_stdio(state(ctx).config())
