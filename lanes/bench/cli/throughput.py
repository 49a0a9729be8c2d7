"""``lanes bench throughput``."""

from __future__ import annotations

import typer
from rich.table import Table

from lanes.bench.cli.group import bench_app
from lanes.cli.app import console, print_json, print_result, progress, state


@bench_app.command("throughput")
def throughput(
    ctx: typer.Context,
    jobs: int = typer.Option(2000, "--jobs", min=10, help="Jobs in each run."),
    concurrency: int = typer.Option(32, "--concurrency", min=1, help="Threads per worker."),
    workers: int = typer.Option(2, "--workers", min=1, help="Worker processes (every run)."),
    rounds: int = typer.Option(
        3, "--rounds", min=1, help="Alternating rounds of the three runs; each keeps its best."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Jobs/s and CPU ms per job through lanes vs a plain Celery task calling the provider's SDK
    vs a Celery no-op task: same Redis, same workers, same run."""
    from lanes.bench.throughput import run_throughput

    with progress(as_json) as show:
        result = run_throughput(
            state(ctx).config(),
            jobs=jobs,
            concurrency=concurrency,
            workers=workers,
            rounds=rounds,
            progress=show,
        )
    if as_json:
        print_json(result)
        return
    cpu = result.pop("cpu_ms_per_job")
    print_result(result, as_json)
    console.print(cpu_table(cpu))


def cpu_table(cpu_ms_per_job: dict[str, dict[str, float]]) -> Table:
    """Arms down, kinds of process across: CPU ms per job."""
    kinds = list(next(iter(cpu_ms_per_job.values())))
    table = Table(title="CPU ms per job (mean over rounds)")
    table.add_column("arm")
    for kind in kinds:
        table.add_column(kind, justify="right")
    for arm, by_kind in cpu_ms_per_job.items():
        table.add_row(arm, *(_ms(by_kind[kind]) for kind in kinds))
    return table


def _ms(value: float) -> str:
    return f"{value:.3f}"
