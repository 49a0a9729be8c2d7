"""``lanes bench throughput``."""

from __future__ import annotations

import typer

from lanes.cli.app import bench_app, console, err_console, print_json, state


@bench_app.command("throughput")
def throughput(
    ctx: typer.Context,
    jobs: int = typer.Option(2000, "--jobs", min=10, help="Jobs in each run."),
    concurrency: int = typer.Option(32, "--concurrency", min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Jobs/s through lanes vs plain Celery no-op tasks, same Redis, same worker, same run."""
    from lanes.bench.throughput import run_throughput

    out = err_console if as_json else console
    result = run_throughput(
        state(ctx).config(),
        jobs=jobs,
        concurrency=concurrency,
        progress=lambda m: out.print(f"[dim]{m}[/]"),
    )
    if as_json:
        print_json(result)
    else:
        for key, value in result.items():
            console.print(f"{key:>20}: {value}")
