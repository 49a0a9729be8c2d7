"""``lanes batch``: a JSONL file of jobs, results streamed to OUT, resumable.

The first half runs against the real stack (Redis, the session's worker process, the
simulator), the command in a subprocess as a user runs it: a small batch with bad lines, a
batch killed half-way (SIGKILL) and resumed with nothing lost, duplicated or paid twice, a
partial last line, a budget that stops a batch. The second half holds the batch's own
mechanics to account with an in-memory client: bounded in flight, flat memory and handles
over 10,000 lines, bad lines, budgets, stop and timeouts.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from rich.console import Console

from lanes.broker.result import Result
from lanes.cli.batch import summary_lines, summary_table
from lanes.client import Lanes
from lanes.kernel.errors import BudgetExceeded, JobError, JobTimeout
from lanes.kernel.files import MAX_INPUT_BYTES
from lanes.ops.stack import sim_profiles
from lanes.recipes.batch import (
    BatchProgress,
    BatchStop,
    BatchSummary,
    arun_batch,
    batch_prefix,
    check_batch,
    run_batch,
)
from lanes.router.job import parse_job

from ..cli.test_inputs import lanes_process
from ..cli.test_routing import run_main
from ..conftest import LaneStack, default_sigint

HAIKU = {"instance": "claude1", "model": "claude-haiku-4-5"}
ZAI = {"instance": "zai", "model": "glm-4.5-air", "vital": False}


def job_lines(n: int, tag: str, start: int = 0) -> list[dict[str, Any]]:
    """``n`` distinct research jobs (no two share a cached answer), half on each of two
    lanes."""
    return [
        {"id": f"q{i}", "prompt": f"Summarise the abstract of paper {i} in two sentences ({tag})",
         "max_tokens": 40, **(HAIKU if i % 2 else ZAI)}
        for i in range(start, start + n)
    ]  # fmt: skip


def write_lines(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def out_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def lanes_cli(
    stack: LaneStack, *args: str, timeout_s: float = 180
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "lanes", "-c", str(stack.config_path), "batch", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                          env={**os.environ, "COLUMNS": "120"})  # fmt: skip


def tag() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def lanes(lane_stack: LaneStack) -> Iterator[Lanes]:
    with lane_stack.client() as client:
        yield client


# -- the real stack -----------------------------------------------------------------------------
def test_a_small_batch_writes_one_line_per_id_and_reports_bad_lines(
    lane_stack: LaneStack, tmp_path: Path
) -> None:
    rows: list[Any] = job_lines(18, tag())
    rows.insert(6, "{not json")  # line 7
    rows.insert(12, {"id": "no-prompt", "max_tokens": 40})  # line 13
    src = tmp_path / "in.jsonl"
    src.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    proc = lanes_cli(lane_stack, str(src), "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    written = out_rows(out)
    assert sorted(r["id"] for r in written) == sorted(f"q{i}" for i in range(18))
    assert {r["status"] for r in written} == {"ok"}
    assert all(r["output"] and r["cost_usd"] > 0 and r["job_id"] for r in written)
    assert {r["lane"] for r in written} == {"claude1", "zai"}
    assert "line 7: not JSON" in proc.stderr
    assert "line 13: invalid job" in proc.stderr and "prompt" in proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["lines"], summary["bad_lines"], summary["submitted"]) == (20, 2, 18)
    assert (summary["ok"], summary["failed"], summary["not_run"]) == (18, 0, 0)
    assert summary["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in written), abs=1e-5)
    assert {row["lane"]: row["jobs"] for row in summary["lanes"]} == {"claude1": 9, "zai": 9}
    assert {row["lane"]: row["simulated"] for row in summary["lanes"]} == {"claude1": 9, "zai": 9}
    assert all(r["simulated"] and r["cost_saved_usd"] == 0.0 for r in written)
    again = lanes_cli(lane_stack, str(src), "-o", str(out), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["skipped_done"] == 18
    assert len(out_rows(out)) == 18  # nothing run or written twice


def test_the_command_prints_a_table_by_lane(lane_stack: LaneStack, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "in.jsonl", job_lines(12, tag()))
    out = tmp_path / "out.jsonl"
    proc = lanes_cli(lane_stack, str(src), "-o", str(out), "--concurrency", "4")
    print(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout
    assert "claude1 (simulated)" in table and "zai (simulated)" in table and "total" in table
    assert "12 lines: 12 written (12 ok, 0 failed), 0 already done, 0 bad" in table
    assert "12 answers came from the provider simulator" in table


def _batch_jobs(lanes: Lanes, out: Path) -> set[str]:
    """Every job id ever submitted by a batch into ``out`` (the ids the dispatcher claimed)."""
    owner = lanes.keys.owner("")
    names = lanes.redis.scan_iter(owner + batch_prefix(out) + "*", count=1000)
    return {name.removeprefix(owner) for name in names}


def _wait_for_lines(out: Path, at_least: int, proc: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        count = out.read_bytes().count(b"\n") if out.exists() else 0
        if count >= at_least:
            return count
        assert proc.poll() is None, "the batch ended before it could be killed"
        time.sleep(0.01)
    raise AssertionError(f"fewer than {at_least} lines in {out} after 60s")


def test_a_batch_killed_half_way_resumes_with_nothing_lost_duplicated_or_paid_twice(
    lane_stack: LaneStack, lanes: Lanes, tmp_path: Path
) -> None:
    total = 300
    src = write_lines(tmp_path / "in.jsonl", job_lines(total, tag()))
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "lanes", "-c", str(lane_stack.config_path), "batch", str(src),
           "-o", str(out), "--concurrency", "8", "--json"]  # fmt: skip
    with slow_lanes(lane_stack, latency_s=0.2):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for_lines(out, 60, proc)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    at_kill = out_rows(out)
    assert 60 <= len(at_kill) < total, "the kill must land mid-run"
    # A job whose message the kill stopped on its way to the queue is re-sent by the workers'
    # janitor (after janitor_quiet_s): the resumed run may wait a minute for it, never longer.
    in_flight = _batch_jobs(lanes, out) - {row["job_id"] for row in at_kill}
    assert in_flight, "jobs were in flight when the batch was killed"

    again = lanes_cli(lane_stack, str(src), "-o", str(out), "--concurrency", "16", "--json")
    assert again.returncode == 0, again.stderr
    rows = out_rows(out)
    ids = Counter(row["id"] for row in rows)
    assert ids == Counter({f"q{i}": 1 for i in range(total)})  # none lost, none twice
    assert {row["status"] for row in rows} == {"ok"}
    assert rows[: len(at_kill)] == at_kill  # what was written stays as it was
    job_ids = {row["job_id"] for row in rows}
    assert len(job_ids) == total
    assert _batch_jobs(lanes, out) == job_ids  # one job per line, ever
    assert in_flight <= job_ids  # the resumed run collected the jobs in flight at the kill
    charges = {job_id: lanes.stores.jobs.charges(job_id) for job_id in job_ids}
    assert all(len(charged) == 1 for charged in charges.values())  # one paid call per line
    for row in rows:
        assert sum(charges[row["job_id"]].values()) == pytest.approx(row["cost_usd"])
    summary = json.loads(again.stdout)
    assert summary["skipped_done"] == len(at_kill)
    assert summary["ok"] == total - len(at_kill)


def test_ctrl_c_stops_the_batch_keeps_what_finished_and_says_how_to_resume(
    lane_stack: LaneStack, tmp_path: Path
) -> None:
    total = 200
    src = write_lines(tmp_path / "in.jsonl", job_lines(total, tag()))
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "lanes", "-c", str(lane_stack.config_path), "batch", str(src),
           "-o", str(out), "--concurrency", "4"]  # fmt: skip
    with slow_lanes(lane_stack, latency_s=0.2):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "COLUMNS": "120"},
                                preexec_fn=default_sigint)  # fmt: skip
        try:
            _wait_for_lines(out, 20, proc)
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, stderr
    written = out_rows(out)
    assert 20 <= len(written) < total and len({r["id"] for r in written}) == len(written)
    assert "stopped (interrupted)" in stdout and "run the same command again" in stdout
    again = lanes_cli(lane_stack, str(src), "-o", str(out), "--json")
    assert again.returncode == 0, again.stderr
    assert sorted(r["id"] for r in out_rows(out)) == sorted(f"q{i}" for i in range(total))


def test_sigterm_stops_the_batch_like_ctrl_c_and_exits_143(
    lane_stack: LaneStack, tmp_path: Path
) -> None:
    total = 200
    src = write_lines(tmp_path / "in.jsonl", job_lines(total, tag()))
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "lanes", "-c", str(lane_stack.config_path), "batch", str(src),
           "-o", str(out), "--concurrency", "4"]  # fmt: skip
    with slow_lanes(lane_stack, latency_s=0.2):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "COLUMNS": "120"})  # fmt: skip
        try:
            _wait_for_lines(out, 20, proc)
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 143, stderr
    assert "stopping (SIGTERM)" in stderr
    written = out_rows(out)
    assert 20 <= len(written) < total and len({r["id"] for r in written}) == len(written)
    assert "stopped (terminated): SIGTERM" in stdout and "run the same command again" in stdout
    again = lanes_cli(lane_stack, str(src), "-o", str(out), "--json")
    assert again.returncode == 0, again.stderr
    assert sorted(r["id"] for r in out_rows(out)) == sorted(f"q{i}" for i in range(total))


@pytest.mark.parametrize(
    ("out", "words"),
    [
        ("/dev/full", "cannot write output file /dev/full: it is a character device"),
        ("/dev/null", "cannot write output file /dev/null: it is a character device"),
        ("/dev/stdout", "cannot write output file /dev/stdout: it is a pipe (FIFO)"),
    ],
)
def test_the_command_refuses_an_output_that_is_not_a_regular_file(
    tmp_path: Path, out: str, words: str
) -> None:
    src = write_lines(tmp_path / "in.jsonl", job_lines(2, "x"))
    proc = lanes_process("batch", str(src), "-o", out)  # stdout is a pipe: `| cat`
    err = " ".join(proc.stderr.split())
    assert proc.returncode == 2, proc.stderr
    assert words in err and "OUT must be a regular file" in err and "Traceback" not in err


def test_the_client_refuses_text_that_is_not_utf8_as_a_job_error(lanes: Lanes) -> None:
    with pytest.raises(JobError, match="invalid job: system: holds text that cannot be encoded"):
        lanes.submit({"prompt": "hello", "system": "\udfff"})


@contextmanager
def slow_lanes(stack: LaneStack, latency_s: float) -> Iterator[None]:
    """The simulator's claude1 and zai answer in ``latency_s`` for the duration."""
    originals = {name: sim_profiles(stack.config)[name] for name in ("claude1", "zai")}
    for name, profile in originals.items():
        update = {"latency_s": latency_s, "latency_jitter_s": 0.0}
        stack.sim.set_profile(name, profile.model_copy(update=update))
    try:
        yield
    finally:
        for name, profile in originals.items():
            stack.sim.set_profile(name, profile)


def test_a_partial_last_line_is_dropped_and_its_id_collected_again(
    lanes: Lanes, tmp_path: Path
) -> None:
    src = write_lines(tmp_path / "in.jsonl", job_lines(10, tag()))
    out = tmp_path / "out.jsonl"
    first = run_batch(lanes, src, out, concurrency=4, timeout_s=60)
    assert first.ok == 10
    text = out.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = text[-1]
    out.write_text("".join(text[:-1]) + cut[: len(cut) // 2], encoding="utf-8")  # a kill mid-write
    problems: list[str] = []
    again = run_batch(lanes, src, out, concurrency=4, timeout_s=60, on_problem=problems.append)
    assert again.dropped_partial_line
    assert (again.skipped_done, again.submitted, again.ok) == (9, 1, 1)
    assert any("partial line" in p for p in problems)
    rows = out_rows(out)
    assert len(rows) == 10 and len({r["id"] for r in rows}) == 10
    assert rows[-1] == json.loads(cut)  # the same job collected again: same job id, same answer


def test_the_python_api_returns_a_summary_by_lane(lanes: Lanes, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "in.jsonl", job_lines(8, tag()))
    out = tmp_path / "out.jsonl"
    seen: list[BatchProgress] = []
    summary = run_batch(lanes, src, out, concurrency=4, timeout_s=60, on_progress=seen.append)
    assert isinstance(summary, BatchSummary)
    assert (summary.lines, summary.ok, summary.exit_code) == (8, 8, 0)
    by_lane = {row.lane: row for row in summary.sorted_lanes()}
    assert {lane: row.jobs for lane, row in by_lane.items()} == {"claude1": 4, "zai": 4}
    assert all(row.cost_usd > 0 and row.mean_latency_s > 0 for row in by_lane.values())
    assert summary.cost_usd == pytest.approx(sum(r["cost_usd"] for r in out_rows(out)))
    assert seen[-1].done == seen[-1].total == 8 and seen[-1].in_flight == 0
    assert json.loads(json.dumps(summary.to_json()))["lanes"][0]["jobs"] == 4

    more = write_lines(tmp_path / "more.jsonl", job_lines(4, tag(), start=100))
    later = asyncio.run(arun_batch(lanes, more, out, concurrency=2, timeout_s=60))
    assert later.ok == 4 and len(out_rows(out)) == 12


def test_a_budget_stops_the_batch_and_a_rerun_resumes(lanes: Lanes, tmp_path: Path) -> None:
    project = f"batch{tag()}"
    rows = [{**row, "project": project, "cache": False} for row in job_lines(40, tag())]
    src = write_lines(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    envelope, _ = lanes.dispatcher.prepare({k: v for k, v in rows[1].items() if k != "id"})
    budget_id = f"project:{project}:daily"
    lanes.stores.budget.set_limit(budget_id, envelope.reserved_usd * 3.5)
    time.sleep(1.1)  # dispatchers read limits at most once a second
    try:
        stopped = run_batch(lanes, src, out, concurrency=2, timeout_s=60)
        assert stopped.stopped_reason == "budget" and budget_id in stopped.stop_message
        assert stopped.exit_code == 4
        assert 0 < stopped.ok < 40 and stopped.not_run > 0
        assert stopped.ok + stopped.not_run == 40
        assert len(out_rows(out)) == stopped.ok
    finally:
        lanes.stores.budget.set_limit(budget_id, None)
    time.sleep(1.1)
    resumed = run_batch(lanes, src, out, concurrency=8, timeout_s=60)
    assert resumed.exit_code == 0 and resumed.skipped_done == stopped.ok
    assert sorted(r["id"] for r in out_rows(out)) == sorted(r["id"] for r in rows)


def test_bad_arguments_exit_2_before_connecting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens
    missing = tmp_path / "missing.jsonl"
    assert run_main(monkeypatch, "batch", str(missing), "-o", str(tmp_path / "o.jsonl")) == 2
    assert f"cannot read input file {missing}: no such file" in capsys.readouterr().err
    src = write_lines(tmp_path / "in.jsonl", job_lines(1, "x"))
    args = ["batch", str(src), "-o", str(tmp_path / "o.jsonl"), "--strategy", "nope"]
    assert run_main(monkeypatch, *args) == 2
    assert "unknown strategy 'nope'" in capsys.readouterr().err
    assert run_main(monkeypatch, "batch", str(src), "-o", str(src)) == 2
    assert "is the input file" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


# -- the batch's own mechanics, with an in-memory client ------------------------------------------
class StubHandle:
    def __init__(self, owner: StubLanes, job: dict[str, Any]) -> None:
        self.owner = owner
        self.job = job
        self.id = str(job["id"])

    def get(self, timeout_s: float | None = None, *, raise_on_failure: bool = True) -> Result:
        if not self.owner.gate.wait(timeout_s):
            raise JobTimeout(f"job {self.id} not finished after {timeout_s}s")
        with self.owner.lock:
            self.owner.in_flight -= 1
        return Result(job_id=self.id, status="ok", instance=self.job.get("instance", "zai"),
                      model="m", step=0, attempt=0, text=f"answer to {self.job['prompt'][:30]}",
                      cost_usd=0.001, latency_s=0.01)  # fmt: skip


class StubLanes:
    """Submits nothing: counts what is in flight; results wait for ``gate``."""

    def __init__(self, open_gate: bool = True, refuse_after: int | None = None) -> None:
        self.gate = threading.Event()
        if open_gate:
            self.gate.set()
        self.refuse_after = refuse_after
        self.lock = threading.Lock()
        self.submitted = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def submit(self, job: dict[str, Any], *, strategy: str | None = None) -> StubHandle:
        if "prompt" not in job:
            raise JobError("invalid job: job: give exactly one of 'prompt' or 'messages'")
        with self.lock:
            if self.refuse_after is not None and self.submitted >= self.refuse_after:
                raise BudgetExceeded("global:daily")
            self.submitted += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return StubHandle(self, job)


def simple_lines(n: int, prompt_chars: int = 20) -> list[dict[str, Any]]:
    return [{"id": i, "prompt": f"question {i} " + "x" * prompt_chars} for i in range(n)]


def _wait_until(check: Any, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def test_in_flight_never_exceeds_concurrency_and_reading_waits_for_results(
    tmp_path: Path,
) -> None:
    src = write_lines(tmp_path / "in.jsonl", simple_lines(10_000))
    out = tmp_path / "out.jsonl"
    client = StubLanes(open_gate=False)
    result: list[BatchSummary] = []
    runner = threading.Thread(target=lambda: result.append(run_batch(client, src, out,
                                                                     concurrency=8)))  # fmt: skip
    runner.start()
    _wait_until(lambda: client.submitted == 8)
    time.sleep(0.3)
    assert client.submitted == 8  # no more is submitted until results come back
    client.gate.set()
    runner.join(timeout=60)
    [summary] = result
    assert client.max_in_flight <= 8
    assert (summary.ok, summary.submitted, summary.exit_code) == (10_000, 10_000, 0)
    assert len({row["id"] for row in out_rows(out)}) == 10_000


def test_memory_threads_and_handles_stay_flat_over_10000_lines(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "in.jsonl", simple_lines(10_000, prompt_chars=2_000))
    assert src.stat().st_size > 20_000_000
    out = tmp_path / "out.jsonl"
    fds: list[int] = []
    threads: list[int] = []

    def sample(progress: BatchProgress) -> None:
        if progress.done % 500 == 0:
            fds.append(len(os.listdir("/proc/self/fd")))
            threads.append(threading.active_count())

    before_fds = len(os.listdir("/proc/self/fd"))
    before_threads = threading.active_count()
    tracemalloc.start()
    try:
        summary = run_batch(StubLanes(), src, out, concurrency=16, on_progress=sample)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.ok == 10_000
    assert peak < 4_000_000, f"peak {peak} bytes for a {src.stat().st_size}-byte file"
    assert max(fds) <= before_fds + 4  # IN, OUT, OUT's scan: never a handle per line
    assert max(threads) <= before_threads + 16


def test_bad_lines_are_reported_with_their_numbers_and_skipped(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        "\n".join([
            '{"id": "a", "prompt": "one"}',
            "{not json",
            "[1, 2]",
            '{"prompt": "no id"}',
            "",
            '{"id": true, "prompt": "bool id"}',
            '{"id": "a", "prompt": "again"}',
            '{"id": "b"}',
            '{"id": 7, "prompt": "seven"}',
        ]) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    out = tmp_path / "out.jsonl"
    reported: list[str] = []
    summary = run_batch(StubLanes(), src, out, on_problem=reported.append)
    assert reported == [
        "line 2: not JSON: Expecting property name enclosed in double quotes (column 2)",
        "line 3: not a JSON object but list",
        'line 4: no "id"',
        'line 6: "id" must be a non-empty string or an integer',
        'line 7: id "a" repeats line 1; skipped',
        "line 8: invalid job: job: give exactly one of 'prompt' or 'messages'",
    ]
    assert summary.problems == reported
    assert (summary.lines, summary.bad_lines, summary.ok, summary.exit_code) == (8, 6, 2, 0)
    assert [row["id"] for row in out_rows(out)] in (["a", 7], [7, "a"])


def test_a_budget_stops_submitting_and_the_rest_waits_for_a_rerun(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "in.jsonl", simple_lines(100))
    out = tmp_path / "out.jsonl"
    stopped = run_batch(StubLanes(refuse_after=30), src, out, concurrency=4)
    assert stopped.stopped_reason == "budget" and "global:daily" in stopped.stop_message
    assert (stopped.ok, stopped.not_run, stopped.exit_code) == (30, 70, 4)
    resumed = run_batch(StubLanes(), src, out, concurrency=4)
    assert (resumed.skipped_done, resumed.ok, resumed.exit_code) == (30, 70, 0)
    assert sorted(row["id"] for row in out_rows(out)) == list(range(100))


def test_stop_ends_the_run_within_its_grace_and_a_rerun_finishes(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "in.jsonl", simple_lines(50))
    out = tmp_path / "out.jsonl"
    client = StubLanes(open_gate=False)
    stop = threading.Event()
    result: list[BatchSummary] = []
    runner = threading.Thread(target=lambda: result.append(
        run_batch(client, src, out, concurrency=4, stop=stop, grace_s=0.2)))  # fmt: skip
    runner.start()
    _wait_until(lambda: client.submitted == 4)
    stop.set()
    runner.join(timeout=5)
    [summary] = result
    assert summary.stopped_reason == "interrupted" and summary.exit_code == 130
    assert (summary.unfinished, summary.not_run) == (4, 46)
    client.gate.set()  # the abandoned jobs finish now: OUT is closed, nothing is written
    time.sleep(0.2)
    assert out.read_text() == ""
    resumed = run_batch(StubLanes(), src, out)
    assert resumed.ok == 50 and len(out_rows(out)) == 50


def test_a_job_that_times_out_is_not_written_so_a_rerun_collects_it(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "in.jsonl", simple_lines(3))
    out = tmp_path / "out.jsonl"
    summary = run_batch(StubLanes(open_gate=False), src, out, timeout_s=0.1)
    assert (summary.timed_out, summary.ok, summary.exit_code) == (3, 0, 7)
    assert all("not finished after 0.1s" in p for p in summary.problems)
    assert out.read_text() == ""


def test_a_whole_last_line_without_its_newline_is_kept(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "in.jsonl", simple_lines(3))
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": 0, "status": "ok"}', encoding="utf-8")
    summary = run_batch(StubLanes(), src, out)
    assert (summary.skipped_done, summary.ok, summary.dropped_partial_line) == (1, 2, False)
    assert sorted(row["id"] for row in out_rows(out)) == [0, 1, 2]


def test_each_job_carries_its_line_id_and_an_id_for_this_output(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "in.jsonl", [{"id": "a b/c", "prompt": "p"}])
    jobs: list[dict[str, Any]] = []

    class Recording(StubLanes):
        def submit(self, job: dict[str, Any], *, strategy: str | None = None) -> StubHandle:
            jobs.append(job)
            return super().submit(job, strategy=strategy)

    run_batch(Recording(), src, tmp_path / "one.jsonl", defaults={"max_tokens": 99})
    run_batch(Recording(), src, tmp_path / "two.jsonl", defaults={"max_tokens": 99})
    first, second = jobs
    assert first["metadata"] == {"batch_line_id": "a b/c"} and first["max_tokens"] == 99
    assert first["id"].startswith(batch_prefix(tmp_path / "one.jsonl"))
    assert first["id"] != second["id"]  # another OUT, another job
    (tmp_path / "one.jsonl").unlink()
    run_batch(Recording(), src, tmp_path / "one.jsonl", defaults={"max_tokens": 99})
    assert jobs[2]["id"] == first["id"]  # the same line into the same OUT: the same job


def test_check_batch_refuses_what_cannot_start(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "in.jsonl", simple_lines(1))
    with pytest.raises(JobError, match="no such file"):
        check_batch(tmp_path / "nope.jsonl", tmp_path / "out.jsonl")
    with pytest.raises(JobError, match="no directory"):
        check_batch(src, tmp_path / "missing" / "out.jsonl")
    with pytest.raises(JobError, match="concurrency"):
        check_batch(src, tmp_path / "out.jsonl", concurrency=0)


def test_a_second_batch_into_the_same_output_is_refused(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "in.jsonl", simple_lines(3))
    out = tmp_path / "out.jsonl"
    client = StubLanes(open_gate=False)
    first = threading.Thread(target=run_batch, args=(client, src, out), kwargs={"timeout_s": 5})
    first.start()
    _wait_until(lambda: client.submitted == 3)
    with pytest.raises(JobError, match="being written by another batch"):
        run_batch(StubLanes(), src, out)
    client.gate.set()
    first.join(timeout=10)
    assert sorted(row["id"] for row in out_rows(out)) == [0, 1, 2]


# -- what a batch refuses, and lines it cannot read ---------------------------------------------
class ValidatingLanes(StubLanes):
    """Validates and sizes each job as the dispatcher does before it routes it."""

    def submit(self, job: dict[str, Any], *, strategy: str | None = None) -> StubHandle:
        parse_job(job).payload_bytes()
        return super().submit(job, strategy=strategy)


def test_a_line_whose_text_is_not_utf8_is_a_bad_line_and_the_rest_runs(tmp_path: Path) -> None:
    rows = [
        {"id": "ok1", "prompt": "fine"},
        {"id": "sys", "prompt": "p", "system": "\udfff"},
        {"id": "\udfff", "prompt": "p"},
        {"id": "msg", "messages": [{"role": "user", "content": "q\udfff"}]},
        {"id": "meta", "prompt": "p", "metadata": {"k": "\udfff"}},
        {"id": "ok2", "prompt": "fine too"},
    ]
    src = write_lines(tmp_path / "in.jsonl", rows)  # json.dumps writes "\udfff" as an escape
    out = tmp_path / "out.jsonl"
    summary = run_batch(ValidatingLanes(), src, out)
    assert (summary.bad_lines, summary.ok, summary.exit_code) == (4, 2, 0)
    problems = sorted(summary.problems)
    assert problems[0].startswith("line 2: invalid job: system: holds text that cannot be encoded")
    assert problems[1].startswith('line 3: "id" holds text that cannot be encoded as UTF-8')
    assert problems[2].startswith("line 4: invalid job: messages.0.content: holds text")
    assert problems[3].startswith("line 5: invalid job: metadata: holds text")
    assert sorted(row["id"] for row in out_rows(out)) == ["ok1", "ok2"]


def test_a_provider_answer_that_is_not_utf8_is_still_written(tmp_path: Path) -> None:
    class Odd(StubHandle):
        def get(self, timeout_s: float | None = None, *, raise_on_failure: bool = True) -> Result:
            return super().get(timeout_s).model_copy(update={"text": "half \ud83d of a pair"})

    class OddLanes(StubLanes):
        def submit(self, job: dict[str, Any], *, strategy: str | None = None) -> StubHandle:
            super().submit(job, strategy=strategy)
            return Odd(self, job)

    src = write_lines(tmp_path / "in.jsonl", simple_lines(2))
    out = tmp_path / "out.jsonl"
    summary = run_batch(OddLanes(), src, out)
    assert (summary.ok, summary.exit_code) == (2, 0)
    assert [row["output"] for row in out_rows(out)] == ["half \ud83d of a pair"] * 2


@pytest.mark.parametrize("device", ["/dev/null", "/dev/full", "/dev/zero"])
def test_an_output_that_is_a_device_is_refused(tmp_path: Path, device: str) -> None:
    src = write_lines(tmp_path / "in.jsonl", simple_lines(1))
    with pytest.raises(JobError, match=f"cannot write output file {device}: it is a character"):
        check_batch(src, Path(device))
    with pytest.raises(JobError, match="OUT must be a regular file"):
        run_batch(StubLanes(), src, Path("/dev/null"))


def test_an_output_that_is_a_pipe_is_refused(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "in.jsonl", simple_lines(1))
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(JobError, match="it is a pipe"):
        check_batch(src, tmp_path / "pipe")


@pytest.mark.parametrize("dangling", [False, True])
def test_an_output_that_is_a_symlink_is_refused_and_its_target_untouched(
    tmp_path: Path, dangling: bool
) -> None:
    src = write_lines(tmp_path / "in.jsonl", simple_lines(2))
    target = tmp_path / "precious.txt"
    if not dangling:
        target.write_text("not a batch's\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    out.symlink_to(target)
    with pytest.raises(JobError, match=r"output file .*out\.jsonl is a symlink \(to .*precious"):
        run_batch(StubLanes(), src, out)
    if dangling:
        assert not target.exists()
    else:
        assert target.read_text(encoding="utf-8") == "not a batch's\n"


def test_an_input_line_over_the_limit_is_a_bad_line(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    with src.open("wb") as file:
        file.write(b'{"id": 1, "prompt": "before"}\n{"id": 2, "prompt": "')
        file.truncate(MAX_INPUT_BYTES + 100)  # a sparse run of zero bytes, no newline
    with src.open("ab") as file:
        file.write(b'"}\n{"id": 3, "prompt": "after"}\n')
    out = tmp_path / "out.jsonl"
    summary = run_batch(StubLanes(), src, out)
    assert summary.problems == ["line 2: longer than 32 MiB; skipped"]
    assert (summary.lines, summary.bad_lines, summary.ok) == (3, 1, 2)
    assert sorted(row["id"] for row in out_rows(out)) == [1, 3]


def test_the_limit_of_a_line_is_an_option(tmp_path: Path) -> None:
    rows = [*simple_lines(3, prompt_chars=10), {"id": "long", "prompt": "y" * 500}]
    src = write_lines(tmp_path / "in.jsonl", rows)
    summary = run_batch(StubLanes(), src, tmp_path / "out.jsonl", max_line_bytes=200)
    assert summary.problems == ["line 4: longer than 200 bytes; skipped"]
    assert (summary.ok, summary.bad_lines) == (3, 1)


# -- cached and simulated answers, SIGTERM ------------------------------------------------------
class MarkedLanes(StubLanes):
    """Answers ids 0-2 from the cache and every job from the simulator."""

    def submit(self, job: dict[str, Any], *, strategy: str | None = None) -> StubHandle:
        handle = super().submit(job, strategy=strategy)
        cached = job["metadata"]["batch_line_id"] in {"0", "1", "2"}

        class Marked(StubHandle):
            def get(self, timeout_s: float | None = None, *, raise_on_failure: bool = True
                    ) -> Result:  # fmt: skip
                result = super().get(timeout_s)
                update = {"simulated": True, "cached": cached,
                          "cost_usd": 0.0 if cached else result.cost_usd,
                          "cost_saved_usd": 0.002 if cached else 0.0}  # fmt: skip
                return result.model_copy(update=update)

        return Marked(self, handle.job)


def test_cached_and_simulated_answers_are_counted_and_shown(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "in.jsonl", simple_lines(5))
    out = tmp_path / "out.jsonl"
    summary = run_batch(MarkedLanes(), src, out)
    rows = {row["id"]: row for row in out_rows(out)}
    assert rows[0]["cached"] and rows[0]["cost_saved_usd"] == 0.002 and rows[0]["simulated"]
    assert not rows[4]["cached"] and rows[4]["cost_saved_usd"] == 0.0
    [lane] = summary.sorted_lanes()
    assert (lane.jobs, lane.cached, lane.simulated) == (5, 3, 5)
    assert lane.cost_saved_usd == pytest.approx(0.006)
    data = summary.to_json()
    assert (data["cached"], data["simulated"]) == (3, 5)
    assert data["lanes"][0]["cached"] == 3 and data["lanes"][0]["simulated"] == 5
    assert data["lanes"][0]["cost_saved_usd"] == pytest.approx(0.006)
    console = Console(width=160, record=True)
    console.print(summary_table(summary))
    table = console.export_text()
    assert "cached" in table and "saved $" in table and "zai (simulated)" in table
    assert "0.006000" in table
    lines = "\n".join(summary_lines(summary))
    assert "3 answers came from the response cache" in lines and "$0.006000 saved" in lines
    assert "5 answers came from the provider simulator" in lines


def test_a_stop_that_says_sigterm_ends_the_batch_as_terminated(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "in.jsonl", simple_lines(20))
    client = StubLanes(open_gate=False)
    stop = BatchStop()
    result: list[BatchSummary] = []
    out = tmp_path / "out.jsonl"
    runner = threading.Thread(target=lambda: result.append(
        run_batch(client, src, out, concurrency=2, stop=stop, grace_s=0.2)))  # fmt: skip
    runner.start()
    _wait_until(lambda: client.submitted == 2)
    stop.request("terminated", "SIGTERM")
    runner.join(timeout=10)
    client.gate.set()
    [summary] = result
    assert (summary.stopped_reason, summary.exit_code) == ("terminated", 143)
    assert summary.stop_message == "SIGTERM before the end of the input"
    assert (summary.unfinished, summary.not_run) == (2, 18)


def test_a_schema_for_every_line_makes_every_output_its_json(
    lane_stack: LaneStack, tmp_path: Path
) -> None:
    schema = {"type": "object", "required": ["topic", "score"],
              "properties": {"topic": {"type": "string"},
                             "score": {"type": "integer", "minimum": 1, "maximum": 5}}}  # fmt: skip
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    rows = [{**row, "max_tokens": 300} for row in job_lines(6, tag())]
    src = write_lines(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    proc = lanes_cli(lane_stack, str(src), "-o", str(out), "--schema",
                     str(tmp_path / "schema.json"), "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    written = out_rows(out)
    assert len(written) == 6 and {r["status"] for r in written} == {"ok"}
    for row in written:
        jsonschema.validate(json.loads(row["output"]), schema)
    (tmp_path / "bad.json").write_text('{"type": "string"}')
    refused = lanes_cli(lane_stack, str(src), "-o", str(tmp_path / "o2.jsonl"), "--schema",
                        str(tmp_path / "bad.json"))  # fmt: skip
    assert refused.returncode == 2 and '"type": "object"' in refused.stderr
