"""``lanes bench inflight``."""

from __future__ import annotations

import typer

from lanes.bench.cli.group import bench_app
from lanes.cli.app import print_result, progress, state


@bench_app.command("inflight")
def inflight(
    ctx: typer.Context,
    concurrency: int = typer.Option(2000, "--concurrency", min=1, help="Calls one worker holds."),
    pool: str = typer.Option("gevent", "--pool", help="The worker's pool: gevent or threads."),
    latency_s: float = typer.Option(10.0, "--latency", min=0.1, help="Provider latency, s."),
    waves: int = typer.Option(3, "--waves", min=1, help="Jobs queued: waves x concurrency."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Provider calls one worker process holds at once, against a slow simulator with the
    limiter on: calls in flight, jobs/s against the ideal (bar: 0.9 at 2,000) and peak RSS
    (bar: 400 MB)."""
    from lanes.bench.inflight import RATIO_BAR, RSS_BAR_MB, InflightSettings, run_inflight

    if pool not in ("gevent", "threads"):
        raise typer.BadParameter(f"{pool!r}: use gevent or threads", param_hint="--pool")
    settings = InflightSettings(concurrency=concurrency, pool=pool, latency_s=latency_s,
                                waves=waves)  # fmt: skip
    with progress(as_json) as show:
        result = run_inflight(state(ctx).config(), settings, show)
    print_result(result, as_json)
    if result["ratio_to_ideal"] < RATIO_BAR or result["peak_rss_mb"] > RSS_BAR_MB:
        raise typer.Exit(1)
