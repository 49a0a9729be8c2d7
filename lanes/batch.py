"""Batches: a JSONL file of jobs in, one JSONL result line per input id out, resumable.

::

    from lanes import Lanes
    from lanes.batch import run_batch

    with Lanes.connect() as lanes:
        summary = run_batch(lanes, Path("questions.jsonl"), Path("answers.jsonl"))
    print(summary.ok, summary.cost_usd, summary.lanes)

Each input line is ``{"id": ..., "prompt": ..., ...}``: ``id`` (a string or an integer) names
the line, every other field is a :class:`router.job.Job` field. Each finished job becomes one
line of OUT, written (one ``write`` of the whole line) as soon as it finishes::

    {"id", "job_id", "lane", "model", "status", "output", "error", "cost_usd",
     "input_tokens", "output_tokens", "latency_s", "fallbacks", "cached"}

``status`` is ``"ok"`` or ``"failed"`` (a job that failed after its whole fallback chain).

Resuming: OUT is the record of what is done. A run first reads the ids already in OUT and
skips them; a last line cut short by a killed run is dropped (that id runs again). Every job
gets a job id made of OUT's path, the line's id and the job itself, so a line that was
submitted before a kill re-attaches to that job when it runs again: the answer is collected,
not bought twice (for ``result_ttl_s``). A job id rather than an idempotency key, because
the dispatcher claims a job id in the same step that tracks the job: a process killed in the
middle of a submit leaves either nothing (the job is sent again) or a tracked job (which the
workers' janitor re-sends if its message never left), never a claim with no job behind it.

Lines that cannot be run are reported with their line number and skipped, never fatal: not
JSON, not an object, no or repeated ``id``, an invalid job (:class:`JobError` at submit) and a
job with no route (:class:`NoRoute`: nothing can take it under this config). None of them is
written to OUT, so fixing the line (or the config) and running again picks them up.

A :class:`BudgetExceeded` at submit stops the batch: nothing more is submitted, jobs in flight
finish and are written, the rest of the lines stay unwritten for a later run. A job that does
not finish within ``timeout_s`` is not written either (it may still finish: the next run
collects it under its job id). Rate limits are the lanes' business: workers wait
for capacity, so a batch never floods a provider however large it is.

Memory and handles are bounded: at most ``concurrency`` jobs are in flight (one thread each),
at most ``concurrency`` more lines wait parsed, and IN is read a line at a time (twice: the
first pass only counts). What grows with the file is a 16-byte digest per id, to skip what
is done and catch repeated ids.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import hashlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from kernel.errors import (
    BudgetExceeded,
    JobError,
    JobFailed,
    JobTimeout,
    LanesError,
    NoRoute,
)

if TYPE_CHECKING:
    from broker.result import Result

MAX_PROBLEMS = 100
"""Problems a summary keeps (every one is still counted and passed to ``on_problem``)."""
LINE_ID_KEY = "batch_line_id"
"""The job metadata key that carries the input line's id (the job id is derived from it)."""
POLL_S = 0.1
"""How often a waiting thread looks at the stop and halt flags."""


class BatchHandle(Protocol):
    """What a batch needs of a job handle (:class:`broker.handle.JobHandle` is one)."""

    @property
    def id(self) -> str: ...

    def get(self, timeout_s: float | None = None, *, raise_on_failure: bool = True) -> Result: ...


class BatchClient(Protocol):
    """What a batch needs of a client (:class:`lanes.client.Lanes` is one)."""

    def submit(self, job: dict[str, Any], *, strategy: str | None = None) -> BatchHandle: ...


@dataclass(frozen=True)
class BatchProgress:
    """A snapshot for a progress bar. ``total`` is the lines to run (not already in OUT);
    ``done`` counts those that are written, reported bad or timed out."""

    total: int
    done: int
    ok: int
    failed: int
    bad_lines: int
    timed_out: int
    in_flight: int
    cost_usd: float
    elapsed_s: float


@dataclass
class LaneSummary:
    """The finished jobs of one lane (the instance that answered, or last tried)."""

    lane: str
    jobs: int = 0
    ok: int = 0
    failed: int = 0
    cost_usd: float = 0.0
    latency_total_s: float = 0.0

    @property
    def mean_latency_s(self) -> float:
        return self.latency_total_s / self.jobs if self.jobs else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "lane": self.lane,
            "jobs": self.jobs,
            "ok": self.ok,
            "failed": self.failed,
            "cost_usd": round(self.cost_usd, 6),
            "mean_latency_s": round(self.mean_latency_s, 3),
        }


@dataclass
class BatchSummary:
    """What one run did. ``lines``: non-blank lines of IN; ``skipped_done``: their ids were
    already in OUT; ``not_run``: lines left unsubmitted because the run stopped early;
    ``unfinished``: submitted, not written (timed out, or in flight when the run was
    stopped); ``stopped_reason``: None, ``"budget"``, ``"interrupted"`` or ``"error"``."""

    in_path: str
    out_path: str
    lines: int = 0
    skipped_done: int = 0
    bad_lines: int = 0
    submitted: int = 0
    ok: int = 0
    failed: int = 0
    timed_out: int = 0
    unfinished: int = 0
    not_run: int = 0
    cost_usd: float = 0.0
    elapsed_s: float = 0.0
    stopped_reason: str | None = None
    stop_message: str = ""
    error_code: int = 0
    dropped_partial_line: bool = False
    lanes: dict[str, LaneSummary] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """The command's exit code: 130 interrupted, 4 budget, the error's code, 6 a job
        failed, 7 a job timed out, else 0 (bad lines alone do not fail a batch)."""
        if self.stopped_reason == "interrupted":
            return 130
        if self.stopped_reason == "budget":
            return BudgetExceeded.exit_code
        if self.stopped_reason == "error":
            return self.error_code or 1
        if self.failed:
            return JobFailed.exit_code
        if self.timed_out:
            return JobTimeout.exit_code
        return 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cost_usd"] = round(self.cost_usd, 6)
        data["elapsed_s"] = round(self.elapsed_s, 3)
        data["lanes"] = [row.to_json() for row in self.sorted_lanes()]
        data["exit_code"] = self.exit_code
        return data

    def sorted_lanes(self) -> list[LaneSummary]:
        return sorted(self.lanes.values(), key=lambda row: (-row.jobs, row.lane))


@dataclass(frozen=True)
class _Task:
    lineno: int
    line_id: str | int
    job: dict[str, Any]


# -- ids ----------------------------------------------------------------------------------------
def _id_key(line_id: str | int) -> bytes:
    """A fixed-size stand-in for an id (ids are arbitrary text): 1 and "1" stay distinct."""
    text = json.dumps(line_id, ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _valid_id(value: object) -> str | int | None:
    """The id if it is one (a non-empty string or an integer), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value):
        return value
    return None


def _shown(line_id: str | int) -> str:
    text = json.dumps(line_id, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def batch_prefix(out_path: Path) -> str:
    """The start of every job id a batch into ``out_path`` submits."""
    return f"batch-{hashlib.sha256(str(out_path.resolve()).encode()).hexdigest()[:12]}-"


def batch_job_id(
    out_path: Path, line_id: str | int, job: dict[str, Any], strategy: str | None
) -> str:
    """The job id of a line: the same OUT, id, job and strategy give the same id (a resumed
    run re-attaches to the job); an edited line gets a new one."""
    what = json.dumps([line_id, job, strategy], sort_keys=True, ensure_ascii=False)
    return batch_prefix(out_path) + hashlib.sha256(what.encode()).hexdigest()[:32]


# -- IN -----------------------------------------------------------------------------------------
def _open_in(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise JobError(f"cannot read input file {path}: {exc.strerror}") from None


def _decoded(raw: bytes, first: bool) -> str:
    """A line as text; a UTF-8 byte-order mark on the first line is dropped."""
    return raw.decode("utf-8-sig" if first else "utf-8").strip()


def _parse_line(text: str) -> tuple[str | int, dict[str, Any]]:
    """(id, the other fields) of one line; ValueError saying what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"not a JSON object but {type(data).__name__}")
    if "id" not in data:
        raise ValueError('no "id"')
    line_id = _valid_id(data.pop("id"))
    if line_id is None:
        raise ValueError('"id" must be a non-empty string or an integer')
    return line_id, data


def _line_id(raw: bytes, first: bool = False) -> str | int | None:
    """The id of a line, None if it has none (or is not a line of JSON)."""
    try:
        return _parse_line(_decoded(raw, first))[0]
    except (ValueError, UnicodeDecodeError):
        return None


def _count_lines(path: Path, done: set[bytes]) -> tuple[int, int]:
    """(non-blank lines, lines whose id is in ``done``): the first pass, for the totals."""
    lines = already = 0
    with _open_in(path) as file:
        for lineno, raw in enumerate(file, 1):
            if not raw.strip():
                continue
            lines += 1
            if done:
                line_id = _line_id(raw, lineno == 1)
                already += line_id is not None and _id_key(line_id) in done
    return lines, already


# -- OUT ----------------------------------------------------------------------------------------
class _Output:
    """OUT, open for appending and locked against a second batch writing it at once.

    Each line goes out in one ``write`` of the whole line, under a lock; what is written is
    in the kernel's hands, so a killed process loses none of it (``fsync`` at close guards
    against a crash of the machine). Once closed, late results are dropped, not written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise JobError(f"cannot write output file {path}: {exc.strerror}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            raise JobError(
                f"output file {path} is being written by another batch; wait for it to end"
            ) from None
        self._lock = threading.Lock()
        self._closed = False

    def done_ids(self, problem: Callable[[str], None]) -> tuple[set[bytes], bool]:
        """The ids already in OUT, and whether a partial last line (a killed run's) was cut
        off. A last line that is whole but for its newline is kept and given one."""
        done: set[bytes] = set()
        end = 0
        last = b""
        with self.path.open("rb") as file:
            for lineno, raw in enumerate(file, 1):
                if not raw.endswith(b"\n"):
                    last = raw
                    break
                end += len(raw)
                self._note(raw, lineno, done, problem)
        if not last:
            return done, False
        line_id = _line_id(last)
        if line_id is not None:
            os.write(self._fd, b"\n")
            done.add(_id_key(line_id))
            return done, False
        os.ftruncate(self._fd, end)
        problem(
            "OUT ended in a partial line (a run was interrupted): dropped it; its id runs again"
        )
        return done, True

    @staticmethod
    def _note(raw: bytes, lineno: int, done: set[bytes], problem: Callable[[str], None]) -> None:
        if not raw.strip():
            return
        line_id = _line_id(raw)
        if line_id is None:
            problem(f"OUT line {lineno} is not a result line; ignored")
            return
        done.add(_id_key(line_id))

    def append(self, record: dict[str, Any]) -> bool:
        """Write one line; False (nothing written) once the output is closed."""
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        with self._lock:
            if self._closed:
                return False
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            return True

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)


def result_record(line_id: str | int, job_id: str, result: Result) -> dict[str, Any]:
    """The OUT line of a finished job."""
    return {
        "id": line_id,
        "job_id": job_id,
        "lane": result.instance,
        "model": result.model,
        "status": result.status,
        "output": result.text,
        "error": result.error,
        "cost_usd": result.cost_usd,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "latency_s": result.latency_s,
        "fallbacks": len(result.fallbacks),
        "cached": result.cached,
    }


def _unreadable_record(line_id: str | int, job_id: str, error: str) -> dict[str, Any]:
    """The OUT line of a job that ended with a result lanes could not read."""
    return {
        "id": line_id,
        "job_id": job_id,
        "lane": "",
        "model": "",
        "status": "failed",
        "output": "",
        "error": error,
        "cost_usd": 0.0,
        "input_tokens": 0,
        "output_tokens": 0,
        "latency_s": 0.0,
        "fallbacks": 0,
        "cached": False,
    }


# -- the run ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Settings:
    client: BatchClient
    in_path: Path
    out_path: Path
    concurrency: int
    timeout_s: float
    strategy: str | None
    defaults: dict[str, Any]
    stop: threading.Event
    grace_s: float


class _Run:
    """What the reader and the job threads share, behind one lock."""

    def __init__(
        self,
        summary: BatchSummary,
        total: int,
        output: _Output,
        on_progress: Callable[[BatchProgress], None] | None,
        on_problem: Callable[[str], None] | None,
    ) -> None:
        self.summary = summary
        self.total = total
        self.output = output
        self.halted = threading.Event()
        self.feeding_done = threading.Event()
        self._on_progress = on_progress
        self._on_problem = on_problem
        self._lock = threading.Lock()
        self._done = 0
        self._in_flight = 0
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

    def submitted(self) -> None:
        with self._lock:
            self.summary.submitted += 1
            self._in_flight += 1

    def timed_out(self, task: _Task, job_id: str, timeout_s: float) -> None:
        self.problem(
            f"line {task.lineno}: id {_shown(task.line_id)} (job {job_id}) not finished after"
            f" {timeout_s:g}s; not written: running the batch again collects it"
        )
        with self._lock:
            self.summary.timed_out += 1
            self._in_flight -= 1
            self._done += 1
        self.progress()

    def finished(self, record: dict[str, Any]) -> None:
        """Write a finished job's line and count it (unless OUT is closed: then the next run
        collects it)."""
        if not self.output.append(record):
            return
        with self._lock:
            self._count(record)
            self._in_flight -= 1
            self._done += 1
        self.progress()

    def _count(self, record: dict[str, Any]) -> None:
        s = self.summary
        ok = record["status"] == "ok"
        s.ok += ok
        s.failed += not ok
        s.cost_usd += record["cost_usd"]
        row = s.lanes.setdefault(record["lane"], LaneSummary(record["lane"]))
        row.jobs += 1
        row.ok += ok
        row.failed += not ok
        row.cost_usd += record["cost_usd"]
        row.latency_total_s += record["latency_s"]

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
                in_flight=self._in_flight,
                cost_usd=s.cost_usd,
                elapsed_s=time.monotonic() - self._started,
            )

    def progress(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self.snapshot())

    def close(self) -> BatchSummary:
        """The summary, with what was left; OUT closed (late results are dropped)."""
        self.output.close()
        with self._lock:
            s = self.summary
            s.elapsed_s = time.monotonic() - self._started
            s.unfinished = s.submitted - s.ok - s.failed
            s.not_run = max(0, self.total - s.bad_lines - s.submitted)
            return s


def _run_one(run: _Run, settings: _Settings, task: _Task) -> None:
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
    run.submitted()
    try:
        result = handle.get(timeout_s=settings.timeout_s, raise_on_failure=False)
    except JobTimeout:
        run.timed_out(task, handle.id, settings.timeout_s)
    except JobFailed as exc:
        run.finished(_unreadable_record(task.line_id, handle.id, str(exc)))
    except LanesError as exc:
        run.halt("error", f"line {task.lineno}: {exc}", exc.exit_code)
    else:
        run.finished(result_record(task.line_id, handle.id, result))


def _serve(run: _Run, settings: _Settings, work: queue.Queue[_Task]) -> None:
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


def _tasks(run: _Run, settings: _Settings, done: set[bytes]) -> Generator[_Task]:
    """The lines of IN to run, one at a time; bad ones reported, done ones passed over."""
    seen: dict[bytes, int] = {}
    with _open_in(settings.in_path) as file:
        for lineno, raw in enumerate(file, 1):
            if not raw.strip():
                continue
            try:
                line_id, fields = _parse_line(_decoded(raw, lineno == 1))
            except UnicodeDecodeError as exc:
                run.bad_line(lineno, f"not UTF-8 text (byte {exc.start})")
                continue
            except ValueError as exc:
                run.bad_line(lineno, str(exc))
                continue
            key = _id_key(line_id)
            if key in done:
                continue
            if key in seen:
                run.bad_line(lineno, f"id {_shown(line_id)} repeats line {seen[key]}; skipped")
                continue
            seen[key] = lineno
            yield _Task(lineno, line_id, _job(settings, line_id, fields))


def _job(settings: _Settings, line_id: str | int, fields: dict[str, Any]) -> dict[str, Any]:
    """A line's job: its fields over the defaults, the line's id in its metadata, its own
    id derived from both."""
    job = {**settings.defaults, **fields}
    metadata = job.get("metadata")
    if metadata is None or isinstance(metadata, dict):
        job["metadata"] = {**(metadata or {}), LINE_ID_KEY: str(line_id)}
    job["id"] = batch_job_id(settings.out_path, line_id, job, settings.strategy)
    return job


def _feed(run: _Run, settings: _Settings, tasks: Iterator[_Task], work: queue.Queue[_Task]) -> None:
    """Hand lines to the job threads, never more than the queue holds, until the input
    ends, the run halts or ``stop`` is set."""
    for task in tasks:
        while True:
            if settings.stop.is_set():
                run.halt("interrupted", "asked to stop before the end of the input")
            if run.halted.is_set():
                return
            try:
                work.put(task, timeout=POLL_S)
                break
            except queue.Full:
                continue


def _wait(run: _Run, settings: _Settings, threads: list[threading.Thread]) -> None:
    """Wait for the job threads: all of them, unless ``stop`` is set (then ``grace_s`` more
    for the jobs in flight; what finishes later is collected by the next run)."""
    deadline: float | None = None
    while any(thread.is_alive() for thread in threads):
        if settings.stop.is_set() and deadline is None:
            run.halt("interrupted", "asked to stop while jobs were in flight")
            deadline = time.monotonic() + settings.grace_s
        if deadline is not None and time.monotonic() >= deadline:
            return
        next(thread for thread in threads if thread.is_alive()).join(POLL_S)


def _execute(run: _Run, settings: _Settings, done: set[bytes]) -> None:
    """Start the job threads, feed them, wait for them. Ctrl-C (KeyboardInterrupt) halts the
    run and closes OUT, every finished line in it, on its way up."""
    work: queue.Queue[_Task] = queue.Queue(maxsize=settings.concurrency)
    threads = [
        threading.Thread(
            target=_serve, args=(run, settings, work), name=f"lanes-batch-{n}", daemon=True
        )
        for n in range(settings.concurrency)
    ]
    tasks = _tasks(run, settings, done)
    try:
        for thread in threads:
            thread.start()
        _feed(run, settings, tasks, work)
        run.feeding_done.set()
        _wait(run, settings, threads)
    except KeyboardInterrupt:
        run.halt("interrupted", "interrupted (Ctrl-C)")
        run.feeding_done.set()
        run.output.close()
        raise
    finally:
        tasks.close()


def check_batch(
    in_path: Path, out_path: Path, *, concurrency: int = 1, strategy: str | None = None
) -> None:
    """A :class:`JobError` for arguments a batch cannot start with, before anything is
    opened or connected (the command checks them before it connects)."""
    if concurrency < 1:
        raise JobError(f"concurrency must be 1 or more, not {concurrency}")
    if strategy is not None:
        from router.strategies import get_strategy

        get_strategy(strategy)
    if not in_path.is_file():
        why = "no such file" if not in_path.exists() else "not a file"
        raise JobError(f"cannot read input file {in_path}: {why}")
    if not out_path.parent.is_dir():
        raise JobError(f"cannot write output file {out_path}: no directory {out_path.parent}")
    if out_path.exists() and out_path.resolve() == in_path.resolve():
        raise JobError(f"the output file {out_path} is the input file; name another one")


def run_batch(
    lanes: BatchClient,
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
) -> BatchSummary:
    """Run every line of ``in_path`` not yet in ``out_path``, appending a line to
    ``out_path`` per finished job (see the module docstring for what is skipped, reported
    and resumed); ``lanes`` is a :class:`lanes.client.Lanes`.

    ``defaults``: job fields for lines that leave them out (e.g. ``{"max_tokens": 400}``).
    ``on_progress`` is called from the job threads after each line; ``on_problem`` with each
    problem (``"line N: ..."``). ``stop`` ends the run early: nothing more is submitted and
    the jobs in flight get ``grace_s`` to finish. :class:`JobError` when IN cannot be read,
    OUT cannot be written or ``strategy`` is unknown."""
    check_batch(in_path, out_path, concurrency=concurrency, strategy=strategy)
    summary = BatchSummary(in_path=str(in_path), out_path=str(out_path))
    settings = _Settings(
        client=lanes,
        in_path=in_path,
        out_path=out_path,
        concurrency=concurrency,
        timeout_s=timeout_s,
        strategy=strategy,
        defaults=dict(defaults or {}),
        stop=stop or threading.Event(),
        grace_s=grace_s,
    )
    output = _Output(out_path)
    run = _Run(summary, 0, output, on_progress, on_problem)
    try:
        done, summary.dropped_partial_line = output.done_ids(run.problem)
        summary.lines, summary.skipped_done = _count_lines(in_path, done)
    except BaseException:
        output.close()
        raise
    run.total = summary.lines - summary.skipped_done
    run.progress()
    _execute(run, settings, done)
    return run.close()


async def arun_batch(
    lanes: BatchClient,
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
) -> BatchSummary:
    """:func:`run_batch` for asyncio, in a thread; cancelling the awaiting task stops the
    batch the way ``stop`` does."""
    stop = stop or threading.Event()
    call = functools.partial(
        run_batch,
        lanes,
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
    )
    try:
        return await asyncio.to_thread(call)
    except asyncio.CancelledError:
        stop.set()
        raise
