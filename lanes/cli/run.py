"""Commands that run jobs: ``lanes demo``, ``lanes run``.

Commands import the client (Celery, Redis) when they run, so ``lanes --help`` stays quick.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from lanes.cli.app import (
    app,
    console,
    err_console,
    foreign,
    print_json,
    read_json_object,
    state,
)
from lanes.cli.compare import marks
from lanes.kernel.errors import JobTimeout
from lanes.recipes.rows import result_row

if TYPE_CHECKING:
    from lanes.broker.handle import JobHandle
    from lanes.broker.result import Result
    from lanes.client import Lanes


@app.command()
def demo(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    timeout_s: float = typer.Option(120.0, "--timeout", help="Seconds to wait for the review."),
    flower: bool = typer.Option(
        False, "--flower", help="Start Flower and keep everything running after the review."
    ),
) -> None:
    """Start what is missing (Redis, simulator, a worker per lane), run a 4-reviewer code review."""
    from lanes.cli.app import Progress
    from lanes.cli.serve import serve_until_interrupted, stack_lines
    from lanes.ops.demo import demo_json, demo_providers_line, demo_table, real_lanes, review_rows
    from lanes.ops.stack import running

    st = state(ctx)
    config = st.config()
    out = err_console if as_json else console
    on_terminal = not as_json and console.is_terminal
    progress = Progress(out, spinner=on_terminal, quiet=not on_terminal)
    out.print(Text(demo_providers_line(config, real_lanes(config)), style="dim"))
    with contextlib.ExitStack() as running_stack:
        with progress.waiting("starting lanes"):
            stack = running_stack.enter_context(
                running(config, st.config_file(), log=progress, flower=flower)
            )
        with progress.waiting("waiting for the review"):
            progress("workers ready; fanning the review out")
            rows = review_rows(stack, timeout_s)
        if as_json:
            print_json(demo_json(rows))
        else:
            console.print(demo_table(rows))
        if flower:
            for line in [*stack_lines(stack), "Ctrl-C stops everything"]:
                out.print(Text(line), highlight=False)
            serve_until_interrupted(stack, progress)
    if any(r["status"] != "ok" for r in rows):
        raise typer.Exit(6)


@app.command()
def run(
    ctx: typer.Context,
    prompt: str = typer.Argument(None, help="The prompt; omit with --job FILE."),
    job_file: Path | None = typer.Option(None, "--job", help="A JSON file holding a Job."),
    max_tokens: int = typer.Option(1024, "--max-tokens"),
    instance: str | None = typer.Option(None, "--instance", help="Pin an instance or pool."),
    model: str | None = typer.Option(None, "--model", help="Pin a model."),
    strategy: str | None = typer.Option(None, "--strategy"),
    vital: bool | None = typer.Option(
        None,
        "--vital/--not-vital",
        help="Treat the job as vital (never a cheap lane), or accept cheap lanes for it "
        "(default: the classifier decides).",
    ),
    deadline_s: float | None = typer.Option(
        None,
        "--deadline",
        min=0.1,
        help="Seconds within which the job should end: lanes expected to take longer rank "
        "after those that can make it.",
    ),
    timeout_s: float = typer.Option(
        600.0, "--timeout", min=0.1, help="Seconds to wait for the result (0.1 or more)."
    ),
    stream: bool = typer.Option(
        False, "--stream", help="Print the answer as it is generated (not with --json)."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Submit one job to a running deployment (see `lanes up`) and print its result."""
    from lanes.client import Lanes
    from lanes.kernel.errors import JobError

    if job_file is not None:
        job = read_json_object(job_file, "job file")
    elif prompt:
        job = {
            "prompt": prompt,
            "max_tokens": max_tokens,
            "instance": instance,
            "model": model,
            "vital": vital,
            "deadline_s": deadline_s,
        }
    else:
        raise JobError("give a PROMPT or --job FILE")
    streaming = stream and not as_json
    if streaming:
        job["stream"] = True
    with Lanes.connect(state(ctx).config()) as lanes:
        handle = lanes.submit(job, strategy=strategy)
        if streaming and lanes.unserved([handle.id]) is None:
            print_stream(handle, timeout_s)
        result = wait_for(lanes, handle, timeout_s)
    if as_json:
        print_json(result.to_wire())
    elif streaming:
        err_console.print(foreign(_head(result), "dim"))
    else:
        show_result(result)
    if not result.ok:
        raise typer.Exit(6)


def wait_for(lanes: Lanes, handle: JobHandle, timeout_s: float) -> Result:
    """The job's result. At ``timeout_s``, or within seconds when no worker consumes its lane,
    the job is cancelled (nothing left running or billing after the command exits) and
    :class:`JobTimeout` (:class:`NoWorker`) says so."""
    reason = f"not finished within lanes run --timeout {timeout_s:g}s"
    got = lanes.collect([handle], time.monotonic() + timeout_s, reason)
    result = got.results[0]
    if result is not None:
        return result
    note = f"; job {handle.id} cancelled" + (
        " (its provider call already running finishes and is billed)" if got.calls_in_flight else ""
    )
    if got.no_worker is not None:
        raise got.no_worker.noting(note)
    raise JobTimeout(f"job {handle.id} not finished after {timeout_s:g}s{note}")


def show_result(result: Result) -> None:
    """A result for a person: where it ran (and whether the answer came from the response
    cache or the simulator), then the reply (or the error), as plain text."""
    console.print(foreign(_head(result), "bold"))
    console.print(foreign(result.text or result.error or ""))


def _head(result: Result) -> str:
    return f"{result.instance}/{result.model} {result.status}{marks(result_row(result))}"


def print_stream(handle: JobHandle, timeout_s: float) -> None:
    """The answer's text on stdout as it comes; a restart said on stderr. Gives up quietly
    at ``timeout_s``: the wait for the result that follows says why."""
    try:
        for event in handle.stream(timeout_s):
            if event.kind == "text":
                sys.stdout.write(foreign(event.text).plain)
                sys.stdout.flush()
            elif event.kind == "restart":
                err_console.print(foreign(f"\n[restarted: {event.reason}]", "yellow"))
    except JobTimeout:
        pass
    sys.stdout.write("\n")
