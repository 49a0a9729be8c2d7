"""Commands that run jobs: ``lanes demo``, ``lanes run``."""

from __future__ import annotations

from pathlib import Path

import typer

from broker.result import Result
from lanes.cli.app import (
    app,
    console,
    err_console,
    foreign,
    print_json,
    read_json_object,
    state,
)


@app.command()
def demo(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    timeout_s: float = typer.Option(120.0, "--timeout", help="Seconds to wait for the review."),
) -> None:
    """Start what is missing (Redis, simulator, a worker per lane), run a 4-reviewer code review."""
    from lanes.demo import demo_json, demo_providers_line, demo_table, real_lanes, run_demo

    st = state(ctx)
    config = st.config()
    real = real_lanes(config)
    out = err_console if as_json else console

    def log(message: str) -> None:
        out.print(f"[dim]{message}[/]")

    log(demo_providers_line(config, real))
    rows = run_demo(config, st.config_file(), log=log, timeout_s=timeout_s)
    if as_json:
        print_json(demo_json(rows))
    else:
        console.print(demo_table(rows))
    if any(r["status"] != "ok" for r in rows):
        raise typer.Exit(6)


@app.command()
def run(
    ctx: typer.Context,
    prompt: str = typer.Argument(None, help="The prompt; omit with --job FILE."),
    job_file: Path | None = typer.Option(None, "--job", help="A JSON file holding a Job."),
    max_tokens: int = typer.Option(1024, "--max-tokens"),
    instance: str | None = typer.Option(None, "--instance", help="Pin a lane or pool."),
    model: str | None = typer.Option(None, "--model", help="Pin a model."),
    strategy: str | None = typer.Option(None, "--strategy"),
    timeout_s: float = typer.Option(
        600.0, "--timeout", min=0.1, help="Seconds to wait for the result (0.1 or more)."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Submit one job to a running deployment (see `lanes up`) and print its result."""
    from kernel.errors import JobError
    from lanes.client import Lanes

    if job_file is not None:
        job = read_json_object(job_file, "job file")
    elif prompt:
        job = {"prompt": prompt, "max_tokens": max_tokens, "instance": instance, "model": model}
    else:
        raise JobError("give a PROMPT or --job FILE")
    with Lanes.connect(state(ctx).config()) as lanes:
        handle = lanes.submit(job, strategy=strategy)
        result = handle.get(timeout_s=timeout_s, raise_on_failure=False)
    if as_json:
        print_json(result.to_wire())
    else:
        show_result(result)
    if not result.ok:
        raise typer.Exit(6)


def show_result(result: Result) -> None:
    """A result for a person: where it ran, then the reply (or the error), as plain text."""
    console.print(foreign(f"{result.instance}/{result.model} {result.status}", "bold"))
    console.print(foreign(result.text or result.error or ""))
