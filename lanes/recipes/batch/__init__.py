"""Batches: a JSONL file of jobs in, one JSONL result line per input id out, resumable.

::

    from lanes import Lanes
    from lanes.recipes.batch import run_batch

    with Lanes.connect() as client:
        summary = run_batch(client, Path("questions.jsonl"), Path("answers.jsonl"))
    print(summary.ok, summary.cost_usd, summary.lanes)

The README's "Batch" section says what a line of IN and of OUT hold and what is skipped,
reported and resumed. What the code adds to it:

- Resuming: every job gets a job id made of OUT's path, the line's id and the job, so a line
  submitted before a kill re-attaches to that job when it runs again (for ``result_ttl_s``).
  A job id rather than an idempotency key, because the dispatcher claims a job id in the
  same step that tracks the job: a process killed in the middle of a submit leaves either
  nothing (the job is sent again) or a tracked job (which the workers' janitor re-sends if
  its message never left), never a claim with no job behind it.
- Memory and handles are bounded: at most ``concurrency`` jobs are in flight (one thread
  each), at most ``concurrency`` more lines wait parsed, IN is read a line at a time (twice:
  the first pass only counts) and no line is held longer than ``max_line_bytes``. What grows
  with the file is a 16-byte digest per id, to skip what is done and catch repeated ids.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lanes.kernel.errors import JobError
from lanes.kernel.files import MAX_INPUT_BYTES
from lanes.recipes.batch.files import (
    Output,
    batch_job_id,
    batch_prefix,
    check_in,
    check_out,
    count_lines,
)
from lanes.recipes.batch.run import (
    LINE_ID_KEY,
    MAX_PROBLEMS,
    BatchClient,
    BatchHandle,
    BatchStop,
    Run,
    Settings,
    Unserved,
    execute,
)
from lanes.recipes.batch.summary import BatchProgress, BatchSummary, LaneSummary, out_line

__all__ = [
    "LINE_ID_KEY",
    "MAX_PROBLEMS",
    "BatchClient",
    "BatchHandle",
    "BatchProgress",
    "BatchStop",
    "BatchSummary",
    "LaneSummary",
    "arun_batch",
    "batch_job_id",
    "batch_prefix",
    "check_batch",
    "out_line",
    "run_batch",
]


def check_batch(
    in_path: Path, out_path: Path, *, concurrency: int = 1, strategy: str | None = None
) -> None:
    """A :class:`JobError` for arguments a batch cannot start with, before anything is
    opened or connected (the command checks them before it connects): IN not a regular
    file; OUT not a regular file, a symlink, IN itself, or in no directory."""
    if concurrency < 1:
        raise JobError(f"concurrency must be 1 or more, not {concurrency}")
    if strategy is not None:
        from lanes.router.strategies import get_strategy

        get_strategy(strategy)
    check_in(in_path)
    check_out(out_path, in_path)


def run_batch(
    client: BatchClient,
    in_path: Path,
    out_path: Path,
    *,
    concurrency: int = 32,
    timeout_s: float = 600.0,
    strategy: str | None = None,
    defaults: dict[str, Any] | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
    stop: threading.Event | None = None,
    on_problem: Callable[[str], None] | None = None,
    grace_s: float = 5.0,
    max_line_bytes: int = MAX_INPUT_BYTES,
    unserved: Unserved | None = None,
) -> BatchSummary:
    """Run every line of ``in_path`` not yet in ``out_path``, appending a line to
    ``out_path`` per finished job; ``client`` is a :class:`lanes.client.Lanes`.

    ``defaults``: job fields for lines that leave them out (e.g. ``{"max_tokens": 400}``).
    ``on_progress`` is called from the job threads after each line; ``on_problem`` with each
    problem (``"line N: ..."``). ``stop`` ends the run early: nothing more is submitted and
    the jobs in flight get ``grace_s`` to finish (a :class:`BatchStop` also says why). A line
    over ``max_line_bytes`` is a bad line. ``unserved`` (:meth:`lanes.client.Lanes.unserved`)
    says why jobs cannot finish: a few seconds into the run it stops it (``"no worker"``, exit
    7) when the jobs in flight wait on lanes no worker consumes. :class:`JobError` when IN
    cannot be read, OUT cannot be written or ``strategy`` is unknown."""
    check_batch(in_path, out_path, concurrency=concurrency, strategy=strategy)
    summary = BatchSummary(in_path=str(in_path), out_path=str(out_path))
    settings = Settings(
        client=client,
        in_path=in_path,
        out_path=out_path,
        concurrency=concurrency,
        timeout_s=timeout_s,
        strategy=strategy,
        defaults=dict(defaults or {}),
        stop=stop or threading.Event(),
        grace_s=grace_s,
        max_line_bytes=max_line_bytes,
        unserved=unserved,
    )
    output = Output(out_path)
    run = Run(summary, output, on_progress, on_problem)
    try:
        done, summary.dropped_partial_line = output.done_ids(run.problem)
        summary.lines, summary.skipped_done = count_lines(in_path, done, max_line_bytes)
    except BaseException:
        output.close()
        raise
    run.total = summary.lines - summary.skipped_done
    run.progress()
    execute(run, settings, done)
    return run.close()


async def arun_batch(
    client: BatchClient,
    in_path: Path,
    out_path: Path,
    *,
    concurrency: int = 32,
    timeout_s: float = 600.0,
    strategy: str | None = None,
    defaults: dict[str, Any] | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
    stop: threading.Event | None = None,
    on_problem: Callable[[str], None] | None = None,
    grace_s: float = 5.0,
    max_line_bytes: int = MAX_INPUT_BYTES,
    unserved: Unserved | None = None,
) -> BatchSummary:
    """:func:`run_batch` for asyncio, in a thread; cancelling the awaiting task stops the
    batch the way ``stop`` does."""
    stop = stop or threading.Event()
    call = functools.partial(
        run_batch,
        client,
        in_path,
        out_path,
        concurrency=concurrency,
        timeout_s=timeout_s,
        strategy=strategy,
        defaults=defaults,
        on_progress=on_progress,
        stop=stop,
        on_problem=on_problem,
        grace_s=grace_s,
        max_line_bytes=max_line_bytes,
        unserved=unserved,
    )
    try:
        return await asyncio.to_thread(call)
    except asyncio.CancelledError:
        stop.set()
        raise
