"""``lanes metrics``: the Prometheus exporter in the foreground."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from pathlib import Path

import typer

from lanes.cli.app import app, console, state


@app.command()
def metrics(
    ctx: typer.Context,
    address: str | None = typer.Option(None, "--address", help="Default: metrics.host."),
    port: int | None = typer.Option(None, "--port", help="Default: metrics.port."),
    multiproc: Path | None = typer.Option(
        None,
        "--multiproc-dir",
        help="The workers' metric files (default: $PROMETHEUS_MULTIPROC_DIR, else"
        " metrics.multiproc_dir, else <state_dir>/metrics).",
    ),
) -> None:
    """Serve Prometheus metrics: the workers' counters and the lanes' gauges from Redis."""
    import os

    from lanes.broker.connection import require_redis_url
    from lanes.kernel.redact import mask_url_secrets
    from lanes.ops.exporter import multiproc_dir, start_exporter

    config = state(ctx).config()
    found = multiproc or Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or multiproc_dir(config))
    found.mkdir(parents=True, exist_ok=True)
    redis_url = require_redis_url(config)
    exporter = start_exporter(config, redis_url, multiproc=found, host=address, port=port)
    console.print(f"metrics: {exporter.url} (Redis {mask_url_secrets(redis_url)}, files {found})")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    exporter.close()
    sys.exit(0)
