"""The run: one reader hands lines to ``concurrency`` job threads through a bounded queue;
each thread submits a line's job, waits for it and writes its OUT line."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lanes.dispatch.waiting import FIRST_CHECK_S, RECHECK_S
from lanes.kernel.errors import (
    BudgetExceeded,
    JobError,
    JobFailed,
    JobTimeout,
    LanesError,
    NoRoute,
    NoWorker,
)
from lanes.kernel.files import size_text
from lanes.kernel.taxonomy import Priority
from lanes.recipes.batch.files import (
    Output,
    batch_job_id,
    decoded,
    id_key,
    in_lines,
    parse_line,
    shown,
)
from lanes.recipes.batch.summary import BatchProgress, BatchSummary, out_line
from lanes.recipes.rows import result_row, unread_row

if TYPE_CHECKING:
    from lanes.broker.result import Result

MAX_PROBLEMS = 100
"""Problems a summary keeps (every one is still counted and passed to ``on_problem``)."""
LINE_ID_KEY = "batch_line_id"
"""The job metadata key that carries the input line's id (the job id is derived from it)."""
POLL_S = 0.1
"""How often a waiting thread looks at the stop and halt flags."""


class BatchHandle(Protocol):
    """What a batch needs of a job handle (:class:`lanes.broker.handle.JobHandle` is one)."""

    @property
    def id(self) -> str: ...

    def get(self, timeout_s: float | None = None, *, raise_on_failure: bool = True) -> Result: ...


class BatchClient(Protocol):
    """What a batch needs of a client (:class:`lanes.client.Lanes` is one)."""

    def submit(self, job: dict[str, Any], *, strategy: str | None = None) -> BatchHandle: ...


class BatchStop(threading.Event):
    """The ``stop`` of a batch, knowing who asked: ``set()`` alone stops it as
    ``"interrupted"`` (exit 130); :meth:`request` names the reason and the cause, e.g.
    ``request("terminated", "SIGTERM")`` (exit 143)."""

    def __init__(self) -> None:
        super().__init__()
        self.reason = "interrupted"
        self.cause = "asked to stop"

    def request(self, reason: str, cause: str) -> None:
        self.reason, self.cause = reason, cause
        self.set()


def _why_stopped(stop: threading.Event) -> tuple[str, str]:
    if isinstance(stop, BatchStop):
        return stop.reason, stop.cause
    return "interrupted", "asked to stop"


Unserved = Callable[[list[str]], NoWorker | None]
"""Why jobs cannot finish: they wait on lanes no worker consumes (:meth:`Lanes.unserved`)."""


@dataclass(frozen=True)
class Settings:
    client: BatchClient
    in_path: Path
    out_path: Path
    concurrency: int
    timeout_s: float
    strategy: str | None
    defaults: dict[str, Any]
    stop: threading.Event
    grace_s: float
    max_line_bytes: int
    unserved: Unserved | None = None


@dataclass(frozen=True)
class _Task:
    lineno: int
    line_id: str | int
    job: dict[str, Any]


class Run:
    """What the reader and the job threads share, behind one lock."""

    def __init__(
        self,
        summary: BatchSummary,
        output: Output,
        on_progress: Callable[[BatchProgress], None] | None,
        on_problem: Callable[[str], None] | None,
    ) -> None:
        self.summary = summary
        self.total = 0
        self.output = output
        self.halted = threading.Event()
        self.feeding_done = threading.Event()
        self._on_progress = on_progress
        self._on_problem = on_problem
        self._lock = threading.Lock()
        self._done = 0
        self._in_flight: set[str] = set()
        self._started = time.monotonic()

    def problem(self, message: str) -> None:
        """Report a problem of a line (not of the run): kept in the summary, passed on."""
        with self._lock:
            if len(self.summary.problems) < MAX_PROBLEMS:
                self.summary.problems.append(message)
        if self._on_problem is not None:
            self._on_problem(message)

    def bad_line(self, lineno: int, message: str) -> None:
        self.problem(f"line {lineno}: {message}")
        with self._lock:
            self.summary.bad_lines += 1
            self._done += 1
        self.progress()

    def halt(self, reason: str, message: str, code: int = 0) -> None:
        """Stop submitting; the first reason is the one the summary gives."""
        with self._lock:
            if self.summary.stopped_reason is None:
                self.summary.stopped_reason = reason
                self.summary.stop_message = message
                self.summary.error_code = code
        self.halted.set()

    def submitted(self, job_id: str) -> None:
        with self._lock:
            self.summary.submitted += 1
            self._in_flight.add(job_id)

    def in_flight(self) -> list[str]:
        """The ids of the jobs submitted and not written yet."""
        with self._lock:
            return sorted(self._in_flight)

    def timed_out(self, task: _Task, job_id: str, timeout_s: float) -> None:
        self.problem(
            f"line {task.lineno}: id {shown(task.line_id)} (job {job_id}) not finished after"
            f" {timeout_s:g}s; not written: running the batch again collects it"
        )
        with self._lock:
            self.summary.timed_out += 1
            self._in_flight.discard(job_id)
            self._done += 1
        self.progress()

    def finished(self, line: dict[str, Any]) -> None:
        """Write a finished job's line and count it (unless OUT is closed: then the next run
        collects it)."""
        if not self.output.append(line):
            return
        with self._lock:
            self.summary.count(line)
            self._in_flight.discard(str(line["job_id"]))
            self._done += 1
        self.progress()

    def snapshot(self) -> BatchProgress:
        with self._lock:
            s = self.summary
            return BatchProgress(
                total=self.total,
                done=self._done,
                ok=s.ok,
                failed=s.failed,
                bad_lines=s.bad_lines,
                timed_out=s.timed_out,
                in_flight=len(self._in_flight),
                cost_usd=s.cost_usd,
                elapsed_s=time.monotonic() - self._started,
            )

    def progress(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self.snapshot())

    def close(self) -> BatchSummary:
        """The summary, with what was left; OUT closed (late results are dropped)."""
        sync_error = self.output.close()
        if sync_error is not None:
            self.halt("error", sync_error, 1)
        with self._lock:
            s = self.summary
            s.elapsed_s = time.monotonic() - self._started
            s.unfinished = s.submitted - s.ok - s.failed
            s.not_run = max(0, self.total - s.bad_lines - s.submitted)
            return s


def _run_one(run: Run, settings: Settings, task: _Task) -> None:
    """Submit one line's job, wait for it, write its line."""
    try:
        handle = settings.client.submit(task.job, strategy=settings.strategy)
    except BudgetExceeded as exc:
        run.halt("budget", str(exc), exc.exit_code)
        return
    except (JobError, NoRoute) as exc:
        run.bad_line(task.lineno, str(exc))
        return
    except LanesError as exc:
        run.halt("error", f"line {task.lineno}: {exc}", exc.exit_code)
        return
    run.submitted(handle.id)
    try:
        result = handle.get(timeout_s=settings.timeout_s, raise_on_failure=False)
    except JobTimeout:
        run.timed_out(task, handle.id, settings.timeout_s)
    except JobFailed as exc:
        run.finished(out_line(task.line_id, unread_row(handle.id, str(exc))))
    except LanesError as exc:
        run.halt("error", f"line {task.lineno}: {exc}", exc.exit_code)
    else:
        run.finished(out_line(task.line_id, result_row(result)))


def _serve(run: Run, settings: Settings, work: queue.Queue[_Task]) -> None:
    """One job thread: take a line, run it, until the reader is done and the queue empty.
    After a halt, queued lines are dropped unsubmitted (they stay for a later run)."""
    while True:
        try:
            task = work.get(timeout=POLL_S)
        except queue.Empty:
            if run.feeding_done.is_set() and work.empty():
                return
            continue
        if run.halted.is_set():
            continue
        try:
            _run_one(run, settings, task)
        except Exception as exc:  # a bug, or OUT unwritable: stop the batch, never hang it
            run.halt("error", f"line {task.lineno}: {type(exc).__name__}: {exc}", 1)


def _tasks(run: Run, settings: Settings, done: set[bytes]) -> Generator[_Task]:
    """The lines of IN to run, one at a time; bad ones reported, done ones passed over."""
    seen: dict[bytes, int] = {}
    for lineno, raw in in_lines(settings.in_path, settings.max_line_bytes):
        if raw is None:
            run.bad_line(lineno, f"longer than {size_text(settings.max_line_bytes)}; skipped")
            continue
        try:
            line_id, fields = parse_line(decoded(raw, lineno == 1))
        except UnicodeDecodeError as exc:
            run.bad_line(lineno, f"not UTF-8 text (byte {exc.start})")
            continue
        except ValueError as exc:
            run.bad_line(lineno, str(exc))
            continue
        key = id_key(line_id)
        if key in done:
            continue
        if key in seen:
            run.bad_line(lineno, f"id {shown(line_id)} repeats line {seen[key]}; skipped")
            continue
        seen[key] = lineno
        yield _Task(lineno, line_id, _job(settings, line_id, fields))


def _job(settings: Settings, line_id: str | int, fields: dict[str, Any]) -> dict[str, Any]:
    """A line's job: its fields over the defaults, the line's id in its metadata, its own
    id derived from both."""
    job = {"priority": Priority.BATCH.value, **settings.defaults, **fields}
    metadata = job.get("metadata")
    if metadata is None or isinstance(metadata, dict):
        job["metadata"] = {**(metadata or {}), LINE_ID_KEY: str(line_id)}
    job["id"] = batch_job_id(settings.out_path, line_id, job, settings.strategy)
    return job


def _feed(run: Run, settings: Settings, tasks: Iterator[_Task], work: queue.Queue[_Task]) -> None:
    """Hand lines to the job threads, never more than the queue holds, until the input
    ends, the run halts or ``stop`` is set."""
    for task in tasks:
        while True:
            if settings.stop.is_set():
                reason, cause = _why_stopped(settings.stop)
                run.halt(reason, f"{cause} before the end of the input")
            if run.halted.is_set():
                return
            try:
                work.put(task, timeout=POLL_S)
                break
            except queue.Full:
                continue


def _wait(run: Run, settings: Settings, threads: list[threading.Thread]) -> None:
    """Wait for the job threads: all of them, unless ``stop`` is set (then ``grace_s`` more
    for the jobs in flight; what finishes later is collected by the next run) or the jobs in
    flight wait on a lane no worker consumes (then no more: they stay for the next run)."""
    deadline: float | None = None
    check_at = time.monotonic() + FIRST_CHECK_S
    while any(thread.is_alive() for thread in threads):
        if settings.stop.is_set() and deadline is None:
            reason, cause = _why_stopped(settings.stop)
            run.halt(reason, f"{cause} while jobs were in flight")
            deadline = time.monotonic() + settings.grace_s
        if deadline is None and time.monotonic() >= check_at:
            check_at = time.monotonic() + RECHECK_S
            if _no_worker(run, settings):
                return
        if deadline is not None and time.monotonic() >= deadline:
            return
        next(thread for thread in threads if thread.is_alive()).join(POLL_S)


def _no_worker(run: Run, settings: Settings) -> bool:
    """Halt the run if its jobs in flight wait on lanes no worker consumes."""
    waiting = run.in_flight()
    if settings.unserved is None or not waiting:
        return False
    idle = settings.unserved(waiting)
    if idle is None:
        return False
    run.halt("no worker", str(idle.noting("; the jobs sent stay queued: run the batch again"
                                          " once a worker runs to collect them")))  # fmt: skip
    return True


def execute(run: Run, settings: Settings, done: set[bytes]) -> None:
    """Start the job threads, feed them, wait for them. Ctrl-C (KeyboardInterrupt) halts the
    run and closes OUT, every finished line in it, on its way up."""
    work: queue.Queue[_Task] = queue.Queue(maxsize=settings.concurrency)
    # One thread per job in flight, never more than there are lines to run: a large
    # --concurrency (an economy run's) on a small file starts few threads.
    count = max(1, min(settings.concurrency, run.total or settings.concurrency))
    threads = [
        threading.Thread(
            target=_serve, args=(run, settings, work), name=f"lanes-batch-{n}", daemon=True
        )
        for n in range(count)
    ]
    tasks = _tasks(run, settings, done)
    try:
        for thread in threads:
            thread.start()
        try:
            _feed(run, settings, tasks, work)
        except LanesError as exc:  # IN unreadable half-way (replaced, an I/O error)
            run.halt("error", str(exc), exc.exit_code)
        run.feeding_done.set()
        _wait(run, settings, threads)
    except KeyboardInterrupt:
        run.halt("interrupted", "interrupted (Ctrl-C)")
        run.feeding_done.set()
        run.output.close()
        raise
    finally:
        tasks.close()
