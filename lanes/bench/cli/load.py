"""``lanes bench load``."""

from __future__ import annotations

import typer

from lanes.bench.cli.group import bench_app
from lanes.cli.app import print_result, progress, state


@bench_app.command("load")
def load(
    ctx: typer.Context,
    jobs: int = typer.Option(400, "--jobs", min=10, help="Batch jobs in each arm."),
    latency_s: float = typer.Option(0.4, "--latency", min=0, help="Simulated call latency (s)."),
    workers: int = typer.Option(2, "--workers", min=1, help="Worker processes (every lane)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A mixed batch against the shipped lanes and limits, an interactive job every second:
    jobs/s against the lanes' ceiling, cost, deliveries per job and the interactive jobs'
    wait, for the default strategy and for round_robin in the same run."""
    from lanes.bench.load import run_load

    with progress(as_json) as show:
        result = run_load(
            state(ctx).config(), jobs=jobs, latency_s=latency_s, workers=workers, progress=show
        )
    print_result(result, as_json)
