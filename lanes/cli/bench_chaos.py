"""``lanes bench chaos``."""

from __future__ import annotations

import typer

from lanes.cli.app import bench_app, console, err_console, print_json, state


@bench_app.command("chaos")
def chaos(
    ctx: typer.Context,
    jobs: int = typer.Option(1000, "--jobs", min=10, help="Jobs submitted during the chaos."),
    workers: int = typer.Option(3, "--workers", min=2, max=4, help="Worker processes."),
    window_s: float = typer.Option(
        60.0, "--window", min=20.0, help="Seconds over which jobs are submitted and faults hit."
    ),
    seed: int = typer.Option(7, "--seed", help="Seed of the jobs and of the kill victims."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Kill workers, restart Redis and fail a lane while jobs run; count lost jobs,
    duplicated results and double charges (each must be 0)."""
    from lanes.bench.chaos import run_chaos, settings_with

    out = err_console if as_json else console
    result = run_chaos(
        state(ctx).config(),
        settings_with(jobs=jobs, workers=workers, submit_window_s=window_s, seed=seed),
        progress=lambda m: out.print(f"[dim]{m}[/]", highlight=False),
    )
    if as_json:
        print_json(result)
    else:
        for key, value in result.items():
            console.print(f"{key:>20}: {value}", highlight=False)
