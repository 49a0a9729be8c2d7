"""``lanes bench throughput``."""

from __future__ import annotations

import typer

from lanes.cli.app import bench_app, print_result, progress_printer, state


@bench_app.command("throughput")
def throughput(
    ctx: typer.Context,
    jobs: int = typer.Option(2000, "--jobs", min=10, help="Jobs in each run."),
    concurrency: int = typer.Option(32, "--concurrency", min=1, help="Threads per worker."),
    workers: int = typer.Option(2, "--workers", min=1, help="Worker processes (both runs)."),
    rounds: int = typer.Option(
        3, "--rounds", min=1, help="Alternating rounds of both runs; each keeps its best."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Jobs/s through lanes vs plain Celery no-op tasks, same Redis, same worker, same run."""
    from bench.throughput import run_throughput

    result = run_throughput(
        state(ctx).config(),
        jobs=jobs,
        concurrency=concurrency,
        workers=workers,
        rounds=rounds,
        progress=progress_printer(as_json),
    )
    print_result(result, as_json)
