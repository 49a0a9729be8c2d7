"""``lanes batch IN.jsonl -o OUT.jsonl``: a file of jobs through the lanes, resumable.

A progress bar on a terminal, problems (``line N: ...``) on stderr, a table by lane at the
end. Exit codes: 0 every job ok (bad lines alone are reported, not fatal); 6 a job failed;
7 a job did not finish within ``--timeout``; 4 a budget stopped the batch; 130 stopped by
Ctrl-C, 143 by SIGTERM; 2 bad arguments (IN unreadable, OUT not a regular file, unknown
strategy).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from lanes.cli.app import app, console, err_console, foreign, print_json, state

DEFAULT_CONCURRENCY = 32
ECONOMY_CONCURRENCY = 2_000
DEFAULT_TIMEOUT_S = 600.0

if TYPE_CHECKING:
    from lanes.recipes.batch import BatchProgress, BatchStop, BatchSummary, LaneSummary


class _RateColumn(ProgressColumn):
    """Finished lines per second, over rich's recent window."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("  -- jobs/s" if speed is None else f"{speed:5.1f} jobs/s", style="cyan")


@app.command()
def batch(
    ctx: typer.Context,
    in_file: Path = typer.Argument(..., help='JSONL, one job a line: {"id", "prompt", ...}.'),
    out: Path = typer.Option(
        ..., "-o", "--out", help="Results, one line per id; the same OUT again resumes."
    ),
    concurrency: int | None = typer.Option(
        None,
        "--concurrency",
        min=1,
        help="Jobs in flight at most (default 32; with --economy 2000: a provider batch can"
        " only gather the jobs in flight).",
    ),
    max_tokens: int | None = typer.Option(
        None, "--max-tokens", min=1, help="For lines that do not set max_tokens."
    ),
    project: str | None = typer.Option(
        None, "--project", help="For lines that do not set project."
    ),
    strategy: str | None = typer.Option(None, "--strategy", help="Routing strategy."),
    deadline_s: float | None = typer.Option(
        None,
        "--deadline",
        min=0.1,
        help="For lines that do not set deadline_s: seconds from its submit within which "
        "each job should end (a dearer lane may take it to meet that).",
    ),
    economy: bool = typer.Option(
        False,
        "--economy",
        help="Every job may wait for its lane's batch API (half price; answers within the"
        " provider's window, usually within the hour).",
    ),
    cache_prefix: Path | None = typer.Option(
        None,
        "--cache-prefix",
        help="A text file every line's job reads first (a shared instruction or document),"
        " sent as a cacheable prefix.",
    ),
    schema: Path | None = typer.Option(
        None,
        "--schema",
        help="A JSON Schema (of an object) every line's answer must match, for lines that"
        " do not set output_schema: each result's text is then that JSON.",
    ),
    timeout_s: float | None = typer.Option(
        None,
        "--timeout",
        min=0.1,
        help="Seconds to wait for each job (default 600; with --economy,"
        " batch.economy_deadline_s).",
    ),
    as_json: bool = typer.Option(False, "--json", help="No bar; one JSON summary on stdout."),
) -> None:
    """Run a JSONL file of jobs, results streamed to OUT as they finish; run it again with
    the same OUT to resume."""
    from lanes.client import Lanes
    from lanes.recipes.batch import BatchStop, check_batch, run_batch

    config = state(ctx).config()
    in_flight = concurrency or (ECONOMY_CONCURRENCY if economy else DEFAULT_CONCURRENCY)
    check_batch(in_file, out, concurrency=in_flight, strategy=strategy)
    wait_s = timeout_s or (config.batch.economy_deadline_s if economy else DEFAULT_TIMEOUT_S)
    defaults: dict[str, Any] = {
        "max_tokens": max_tokens,
        "project": project,
        "deadline_s": deadline_s,
        "economy": economy or None,
        "cache_prefix": _read_prefix(cache_prefix, config.max_job_bytes) if cache_prefix else None,
        "output_schema": _read_schema(schema) if schema else None,
    }
    stop = BatchStop()
    with (
        Lanes.connect(config) as lanes,
        _Display(bar=not as_json and sys.stdout.isatty()) as display,
        _stop_on_signals(stop, display.note),
    ):
        summary = run_batch(
            lanes,
            in_file,
            out,
            concurrency=in_flight,
            timeout_s=wait_s,
            strategy=strategy,
            defaults={k: v for k, v in defaults.items() if v is not None},
            on_progress=display.progress,
            stop=stop,
            on_problem=display.problem,
            unserved=lanes.unserved,
        )
    if as_json:
        print_json(summary.to_json())
    else:
        _show(summary)
    if summary.exit_code:
        raise typer.Exit(summary.exit_code)


def _read_prefix(path: Path, limit: int) -> str:
    """The text of a ``--cache-prefix`` file: a regular file (a FIFO or a device would
    block or do things) of at most ``limit`` bytes of UTF-8 text that is not blank."""
    from lanes.kernel.files import open_regular, read_bounded, size_text

    with open_regular(path, "--cache-prefix file") as file:
        data = read_bounded(file, limit)
    if data is None:
        raise typer.BadParameter(f"{path} holds more than {size_text(limit)} (max_job_bytes)",
                                 param_hint="--cache-prefix")  # fmt: skip
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise typer.BadParameter(f"{path} is not UTF-8 text", param_hint="--cache-prefix") from None
    if not text.strip():
        raise typer.BadParameter(f"{path} is empty", param_hint="--cache-prefix")
    return text


def _read_schema(path: Path) -> dict[str, Any]:
    """The JSON Schema of ``--schema``: one JSON object that is a valid schema of an object."""
    from lanes.cli.app import read_json_object
    from lanes.kernel.errors import JobError
    from lanes.router.content import object_schema

    data = read_json_object(path, "--schema file")
    try:
        return object_schema(data)
    except ValueError as exc:
        raise JobError(f"--schema file {path} {exc}") from None


class _Display:
    """The progress bar (on a terminal) and the messages printed while it runs.

    Messages go to stderr; while the bar is drawn and stderr is the same terminal, they go
    through the bar's console instead, above the bar (a write to stderr would land inside
    the bar's line)."""

    def __init__(self, bar: bool) -> None:
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        if bar:
            self._bar = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _RateColumn(),
                TimeRemainingColumn(),
                TextColumn("[green]${task.fields[spend]:.4f}"),
                console=console,
            )

    def __enter__(self) -> _Display:
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task("batch", total=None, spend=0.0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def progress(self, snapshot: BatchProgress) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=snapshot.total, completed=snapshot.done,
                             spend=snapshot.cost_usd)  # fmt: skip

    def problem(self, message: str) -> None:
        self._print(foreign(message, "yellow"))

    def note(self, message: str) -> None:
        self._print(Text(message, style="dim"))

    def _print(self, text: Text) -> None:
        if self._bar is not None and sys.stderr.isatty():
            self._bar.console.print(text)
        else:
            err_console.print(text)


@contextmanager
def _stop_on_signals(stop: BatchStop, note: Callable[[str], None]) -> Iterator[None]:
    """The first Ctrl-C or SIGTERM stops the batch: nothing more is submitted, the jobs in
    flight get their grace, what finished is in OUT and the summary is printed (exit 130 or
    143). A second one ends it at once: Ctrl-C through KeyboardInterrupt, SIGTERM by its
    default action (what is written stays written)."""

    def on_ctrl_c(signum: int, frame: FrameType | None) -> None:
        note("stopping: no new jobs; Ctrl-C again to quit at once")
        stop.request("interrupted", "Ctrl-C")
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        note("stopping (SIGTERM): no new jobs; SIGTERM again to quit at once")
        stop.request("terminated", "SIGTERM")
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, on_ctrl_c),
        signal.SIGTERM: signal.signal(signal.SIGTERM, on_sigterm),
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def summary_table(summary: BatchSummary) -> Table:
    """The finished jobs by lane, and their total. ``cached``: answers from the response
    cache (nothing paid; ``saved $`` is what they cost when bought); a lane marked
    ``(simulated)`` answered from the provider simulator, not the real provider."""
    table = Table(title="batch by lane", title_justify="left")
    table.add_column("lane", no_wrap=True)
    columns = ("jobs", "ok", "failed", "cached", "cost $", "saved $", "latency s", "wait s",
               "deliveries")  # fmt: skip
    for name in columns:
        table.add_column(name, justify="right")
    for row in summary.sorted_lanes():
        table.add_row(
            foreign(_lane_name(row)),
            str(row.jobs),
            str(row.ok),
            str(row.failed),
            str(row.cached),
            f"{row.cost_usd:.6f}",
            f"{row.cost_saved_usd:.6f}",
            f"{row.mean_latency_s:.3f}",
            f"{row.mean_waited_s:.3f}",
            f"{row.deliveries_per_job:.2f}",
        )
    lanes = summary.lanes.values()
    jobs = summary.ok + summary.failed
    latency = sum(r.latency_total_s for r in lanes) / jobs if jobs else 0.0
    waited = sum(r.waited_total_s for r in lanes) / jobs if jobs else 0.0
    deliveries = sum(r.deliveries for r in lanes) / jobs if jobs else 0.0
    table.add_section()
    table.add_row("total", str(jobs), str(summary.ok), str(summary.failed), str(summary.cached),
                  f"{summary.cost_usd:.6f}", f"{summary.cost_saved_usd:.6f}", f"{latency:.3f}",
                  f"{waited:.3f}", f"{deliveries:.2f}", style="bold")  # fmt: skip
    return table


def _lane_name(row: LaneSummary) -> str:
    name = row.lane or "?"
    if not row.simulated:
        return name
    if row.simulated == row.jobs:
        return f"{name} (simulated)"
    return f"{name} ({row.simulated} of {row.jobs} simulated)"


def summary_lines(summary: BatchSummary) -> list[str]:
    """What the table does not say: lines skipped or bad, what is left and how to resume."""
    s = summary
    lines = [
        f"{s.lines} lines: {s.ok + s.failed} written ({s.ok} ok, {s.failed} failed),"
        f" {s.skipped_done} already done, {s.bad_lines} bad; {s.elapsed_s:.1f}s",
        f"results: {s.out_path}",
    ]
    if s.cached:
        lines.append(
            f"{s.cached} answers came from the response cache: no provider call, nothing paid"
            f" (${s.cost_saved_usd:.6f} saved)"
        )
    if s.simulated:
        lines.append(
            f"{s.simulated} answers came from the provider simulator, not a real provider"
            " (the lanes marked simulated)"
        )
    if s.dropped_partial_line:
        lines.append("a partial last line of OUT (an interrupted run) was dropped and re-run")
    left = s.not_run + s.unfinished
    if s.stopped_reason is not None:
        lines.append(f"stopped ({s.stopped_reason}): {s.stop_message}")
    if left:
        lines.append(
            f"{left} lines not written ({s.not_run} not run, {s.unfinished} unfinished):"
            " run the same command again to resume (jobs already submitted are collected,"
            " not paid twice)"
        )
    return lines


def _show(summary: BatchSummary) -> None:
    console.print(summary_table(summary))
    for line in summary_lines(summary):
        console.print(foreign(line), highlight=False)
