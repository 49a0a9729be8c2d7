"""``lanes bench ratelimit``."""

from __future__ import annotations

import typer

from lanes.bench.cli.group import bench_app
from lanes.cli.app import print_result, progress, state


@bench_app.command("ratelimit")
def ratelimit(
    ctx: typer.Context,
    workers: int = typer.Option(4, "--workers", min=1, help="Worker processes on the pool."),
    duration_s: float = typer.Option(60.0, "--duration", min=5, help="Measured window (s)."),
    warmup_s: float = typer.Option(45.0, "--warmup", min=0, help="Unmeasured start (s)."),
    latency_s: float = typer.Option(2.0, "--latency", min=0, help="Simulated call latency (s)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Share of a pool's real RPM that lanes sustains against a limit-enforcing simulator."""
    from lanes.bench.ratelimit import run_ratelimit

    with progress(as_json) as show:
        result = run_ratelimit(
            state(ctx).config(),
            workers=workers,
            duration_s=duration_s,
            warmup_s=warmup_s,
            latency_s=latency_s,
            progress=show,
        )
    print_result(result, as_json)
