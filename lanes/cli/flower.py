"""``lanes flower``: Flower, the Celery monitor, in the foreground (e.g. a compose service)."""

from __future__ import annotations

import os
import sys

import typer
from rich.text import Text

from lanes.cli.app import app, console, state


@app.command()
def flower(
    ctx: typer.Context,
    address: str | None = typer.Option(
        None, "--address", help="Default: flower.host (127.0.0.1); 0.0.0.0 in a container."
    ),
    port: int | None = typer.Option(
        None, "--port", min=0, max=65535, help="Default: flower.port; 0: any free port."
    ),
) -> None:
    """Run Flower on this deployment's Redis, behind basic auth ($FLOWER_BASIC_AUTH, else a
    password generated and printed once; production refuses to start without it), read-only
    unless flower.control is true."""
    from lanes.broker.connection import require_redis_url
    from lanes.ops.flower import (
        access_lines,
        cookie_secret,
        flower_command,
        flower_env,
        flower_url,
        pick_port,
        resolve_auth,
    )
    from lanes.ops.processes import child_env

    st = state(ctx)
    config = st.config()
    auth = resolve_auth(config)
    extra = {
        "LANES_CONFIG": str(st.config_file().resolve()),
        "REDIS_URL": require_redis_url(config),
    }
    host = config.flower.host if address is None else address
    chosen = pick_port(host, config.flower.port if port is None else port)
    for line in access_lines(flower_url(host, chosen), auth):
        console.print(Text(line), highlight=False)
    sys.stdout.flush()
    cmd = flower_command(config, host=host, port=chosen)
    # Flower replaces this process: it gets the signals (Ctrl-C, a container's SIGTERM) itself.
    os.execve(cmd[0], cmd, flower_env(child_env(extra), auth, cookie_secret()))
