"""``lanes bench serve``."""

from __future__ import annotations

import typer

from lanes.bench.cli.group import bench_app
from lanes.cli.app import print_result, progress, state


@bench_app.command("serve")
def serve(
    ctx: typer.Context,
    requests: int = typer.Option(400, "--requests", min=1, help="Requests per arm and round."),
    concurrency: int = typer.Option(50, "--concurrency", min=1, help="Requests at once."),
    latency_s: float = typer.Option(0.5, "--latency", min=0.0, help="Provider latency, s."),
    rounds: int = typer.Option(2, "--rounds", min=1, help="Rounds, the arms alternating."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The time `lanes serve` and the queue add to a call, against the same SDK calling the
    simulator directly in the same run: requests/s, p50/p99 (bar: p50 +5 ms at 50 at once)
    and the time to the first streamed token (bar: +10 ms)."""
    from lanes.bench.serve import (
        ADDED_FIRST_TOKEN_BAR_MS,
        ADDED_P50_BAR_MS,
        ServeSettings,
        run_serve,
    )

    settings = ServeSettings(requests=requests, concurrency=concurrency, latency_s=latency_s,
                             rounds=rounds)  # fmt: skip
    with progress(as_json) as show:
        result = run_serve(state(ctx).config(), settings, show)
    print_result(result, as_json)
    if (result["added_p50_ms"] > ADDED_P50_BAR_MS
            or result["added_first_token_ms"] > ADDED_FIRST_TOKEN_BAR_MS):  # fmt: skip
        raise typer.Exit(1)
