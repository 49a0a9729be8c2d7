"""``lanes bench chaos``."""

from __future__ import annotations

import signal
import sys

import typer

from lanes.bench.cli.group import bench_app
from lanes.cli.app import print_result, progress, state


@bench_app.command("chaos")
def chaos(
    ctx: typer.Context,
    jobs: int = typer.Option(1000, "--jobs", min=10, help="Jobs submitted during the chaos."),
    workers: int = typer.Option(3, "--workers", min=2, max=4, help="Worker processes."),
    window_s: float = typer.Option(
        60.0, "--window", min=20.0, help="Seconds over which jobs are submitted and faults hit."
    ),
    redis_down_s: float = typer.Option(
        2.0, "--redis-down", min=0.0, help="Seconds Redis stays down on each restart."
    ),
    seed: int = typer.Option(7, "--seed", help="Seed of the jobs and of the kill victims."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Kill workers, restart Redis and fail a lane while jobs run; count lost jobs,
    duplicated results and double charges (each must be 0)."""
    from lanes.bench.chaos import run_chaos, settings_with
    from lanes.bench.chaos_faults import FaultSpec

    # SIGTERM unwinds like Ctrl-C, so that workers, simulator and Redis are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = settings_with(
        jobs=jobs,
        workers=workers,
        submit_window_s=window_s,
        seed=seed,
        faults=FaultSpec(redis_down_s=redis_down_s),
    )
    with progress(as_json) as show:
        result = run_chaos(state(ctx).config(), settings, progress=show)
    print_result(result, as_json)
