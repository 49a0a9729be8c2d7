"""Long-running commands: ``lanes worker``, ``lanes sim``, ``lanes up``."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from lanes.cli.app import Progress, app, console, state
from lanes.kernel.redact import mask_url_secrets

if TYPE_CHECKING:
    from lanes.ops.stack import Stack


def stack_lines(stack: Stack) -> list[str]:
    """Where everything a started stack runs can be reached, said once."""
    from lanes.ops.flower import access_lines

    lines = []
    if stack.sim is not None:
        lines.append(f"simulator: {stack.sim.url}")
    if stack.flower_url and stack.flower_auth:
        lines.extend(access_lines(stack.flower_url, stack.flower_auth))
    if stack.metrics_url:
        lines.append(f"metrics: {stack.metrics_url}")
    lines.append(f"logs: {stack.log_dir}")
    return lines


LIVENESS_CHECK_S = 5.0
"""How often ``lanes up`` reads the liveness canaries of its workers."""


def serve_until_interrupted(stack: Stack, progress: Progress) -> None:
    """Keep ``stack`` running until Ctrl-C or SIGTERM: replace a worker that died, and
    restart one that the liveness canary finds connected but not consuming its lane."""
    from lanes.kernel.errors import InfrastructureError

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    checked = time.monotonic()
    try:
        while True:
            stack.respawn_dead()
            if time.monotonic() - checked >= LIVENESS_CHECK_S:
                checked = time.monotonic()
                with contextlib.suppress(InfrastructureError):  # Redis away: workers retry
                    stack.restart_stuck()
            time.sleep(1)
    except KeyboardInterrupt:
        progress("stopping")


@app.command()
def worker(
    ctx: typer.Context,
    lanes: list[str] = typer.Argument(..., help="Lanes (queues) to consume, e.g. claude1 zai."),
    concurrency: int | None = typer.Option(None, "--concurrency", help="Calls in flight."),
    pool: str | None = typer.Option(None, "--pool", help="threads (default) or gevent."),
    loglevel: str = typer.Option("INFO", "--loglevel"),
) -> None:
    """Run a Celery worker for LANES (Ctrl-C stops it; in-flight jobs are redelivered)."""
    st = state(ctx)
    config = st.config()
    lanes = st.lanes(lanes)
    os.environ["LANES_CONFIG"] = str(st.config_file().resolve())
    from lanes.workers.celery_app import app as celery_app  # loads config and Redis from the env

    argv = [
        "worker", "-Q", ",".join(lanes),
        "-P", pool or config.worker.pool,
        "-c", str(concurrency or config.worker.concurrency),
        "-n", f"lanes-{'-'.join(lanes)}@%h",
        "--without-gossip", "--without-mingle", f"--loglevel={loglevel}",
    ]  # fmt: skip
    celery_app.worker_main(argv)


@app.command()
def sim(
    ctx: typer.Context,
    port: int | None = typer.Option(None, "--port", help="Default: simulator.port."),
    latency_s: float | None = typer.Option(None, "--latency", help="Mean latency per call (s)."),
    no_limits: bool = typer.Option(False, "--no-limits", help="Never answer 429 for limits."),
) -> None:
    """Run the provider simulator (Anthropic Messages + OpenAI chat APIs) in the foreground."""
    from lanes.ops.stack import sim_profiles
    from lanes.sim import Profile, run_forever

    config = state(ctx).config()
    profiles = sim_profiles(config)
    update: dict[str, object] = {}
    if latency_s is not None:
        update.update(latency_s=latency_s, latency_jitter_s=0.0)
    if no_limits:
        update.update(
            requests_per_min=0, input_tokens_per_min=0, output_tokens_per_min=0, model_limits={}
        )
    profiles = {name: p.model_copy(update=update) for name, p in profiles.items()}
    spec = config.simulator
    run_forever(spec.host, port if port is not None else spec.port, profiles, Profile())


@app.command()
def up(
    ctx: typer.Context,
    lanes: list[str] = typer.Argument(None, help="Lanes to run (default: all)."),
    concurrency: int | None = typer.Option(None, "--concurrency"),
    no_flower: bool = typer.Option(False, "--no-flower", help="Do not start Flower."),
) -> None:
    """Run the whole topology on this machine until Ctrl-C: Redis (embedded if needed),
    simulator, a worker per lane, Flower (basic auth) and the metrics exporter."""
    from lanes.ops.stack import running

    st = state(ctx)
    config = st.config()
    progress = Progress(console, spinner=console.is_terminal)
    with contextlib.ExitStack() as running_stack:
        with progress.waiting("starting lanes"):
            stack = running_stack.enter_context(
                running(config, st.config_file(), lanes=st.lanes(lanes), concurrency=concurrency,
                        log=progress, flower=not no_flower, metrics=True)
            )  # fmt: skip
        shown = mask_url_secrets(stack.redis_url)
        console.print(f"[green]up[/]: lanes {', '.join(stack.lanes)} on {shown}")
        console.print(f"export REDIS_URL={shown}   # for `lanes run` in another shell")
        for line in stack_lines(stack):
            console.print(Text(line), highlight=False)
        serve_until_interrupted(stack, progress)


@app.command()
def serve(
    ctx: typer.Context,
    port: int | None = typer.Option(None, "--port", help="Default: serve.port."),
    host: str | None = typer.Option(None, "--host", help="Default: serve.host."),
) -> None:
    """Run the HTTP front door: the Anthropic Messages and OpenAI chat completions APIs, each
    request a routed job, callers authenticated with keys from `lanes keys create`."""
    import uvicorn

    from lanes.client import Lanes
    from lanes.serve.app import build_app
    from lanes.serve.door import Door
    from lanes.stores.sql import open_ledger

    config = state(ctx).config()
    spec = config.serve
    lanes = Lanes.connect(config)
    ledger = open_ledger(config)
    door = Door(config, lanes, ledger)
    bound_host, bound_port = host or spec.host, spec.port if port is None else port
    console.print(f"[green]serving[/] on http://{bound_host}:{bound_port}/v1 (Ctrl-C stops)")
    try:
        uvicorn.run(build_app(door), host=bound_host, port=bound_port, log_level="warning",
                    access_log=False)  # fmt: skip
    finally:
        door.close()
        ledger.close()
        lanes.close()
