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
    jobs: int | None = typer.Option(
        None, "--jobs", min=10, help="Jobs submitted during the chaos (1000; 300 with --hosts)."
    ),
    workers: int = typer.Option(3, "--workers", min=2, max=4, help="Worker processes."),
    window_s: float = typer.Option(
        60.0, "--window", min=20.0, help="Seconds over which jobs are submitted and faults hit."
    ),
    redis_down_s: float = typer.Option(
        2.0, "--redis-down", min=0.0, help="Seconds Redis stays down on each restart."
    ),
    seed: int = typer.Option(7, "--seed", help="Seed of the jobs and of the kill victims."),
    hosts: int = typer.Option(
        0,
        "--hosts",
        min=0,
        max=8,
        help="Workers on this many simulated hosts (network namespaces; needs root) instead.",
    ),
    rabbitmq: bool = typer.Option(
        False,
        "--rabbitmq",
        help="The queues on a three-node RabbitMQ cluster started for the run; the node"
        " leading claude1's queue is killed twice (needs rabbitmq-server).",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Kill workers, restart Redis and fail a lane while jobs run; count lost jobs,
    duplicated results and double charges (each must be 0). With --hosts N: workers on N
    hosts with skewed clocks, the pool's rate limits across them, one host cut off from Redis
    and one worker paused past its lease. With --rabbitmq: the queues on a RabbitMQ cluster
    whose leading node is killed as well."""
    from lanes.bench.chaos import run_chaos, settings_with
    from lanes.bench.chaos_faults import FaultSpec

    # SIGTERM unwinds like Ctrl-C, so that workers, simulator and Redis are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if hosts:
        _on_hosts(ctx, hosts, jobs, window_s, seed, as_json)
        return
    settings = settings_with(
        jobs=jobs,
        workers=workers,
        submit_window_s=window_s,
        seed=seed,
        faults=FaultSpec(redis_down_s=redis_down_s, broker_kills=2 if rabbitmq else 0),
        rabbitmq=rabbitmq,
    )
    with progress(as_json) as show:
        result = run_chaos(state(ctx).config(), settings, progress=show)
    print_result(result, as_json)


def _on_hosts(
    ctx: typer.Context, hosts: int, jobs: int | None, window_s: float, seed: int, as_json: bool
) -> None:
    from lanes.bench.chaos_hosts import HostsSettings, run_chaos_hosts
    from lanes.bench.hosts import require_netns

    if hosts < 2:
        raise typer.BadParameter("--hosts needs 2 or more (one is cut off, one paused)")
    require_netns()
    defaults = HostsSettings()
    settings = HostsSettings(hosts=hosts, jobs=jobs or defaults.jobs, seed=seed,
                             submit_window_s=max(window_s, defaults.submit_window_s))  # fmt: skip
    with progress(as_json) as show:
        result = run_chaos_hosts(state(ctx).config(), settings, progress=show)
    print_result(result, as_json)
