"""Property-based fuzzing of batch lines and of the ``--job`` / ``--jsonl`` files: any content
ends in results, bad lines or one of lanes' errors; never a traceback or a hang (each case
has a deadline). Same settings as ``tests/test_fuzz.py``."""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from lanes.broker.result import Result
from lanes.entry import app as cli_app
from lanes.kernel.errors import JobError, LanesError
from lanes.recipes.batch import run_batch
from lanes.router.job import Job, parse_job

from ..conftest import EXAMPLE
from ..test_fuzz import FUZZ

MAX_JOB_BYTES = 4096
MAX_LINE_BYTES = 2048

# Text with lone surrogates (JSON's "\udfff"), besides any other text.
TEXT = st.text(max_size=30) | st.text(
    alphabet=st.characters(codec=None, categories=["Cs", "Ll", "Nd", "Zs"]), max_size=30
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=10,
)
IDS = (
    st.integers(min_value=-(10**60), max_value=10**60)
    | TEXT
    | st.text(min_size=3000, max_size=3000)  # a huge id, past the line limit
    | JSON_VALUES
)
JOB_FIELDS = st.dictionaries(st.sampled_from(sorted(Job.model_fields)) | TEXT, JSON_VALUES,
                             max_size=5)  # fmt: skip
GOOD_JOB = st.fixed_dictionaries({"prompt": st.text(min_size=1, max_size=40)})
RAW_LINES = st.sampled_from([
    b"[" * 5000,  # deeper than Python recurses
    b'{"id": ' + b"9" * 5000 + b', "prompt": "x"}',  # more digits than Python converts
    b'{"id": 1, "prompt": "x", "max_tokens": 1e400}',
    b'{"id": NaN, "prompt": "x"}',
    b"\xef\xbb\xbf{}",
    b"\xff\xfe",
])  # fmt: skip


@st.composite
def batch_line(draw: st.DrawFn) -> bytes:
    """One line of IN, without its newline: a job (good or not), any JSON, or raw bytes."""
    kind = draw(st.sampled_from(["job", "job", "fields", "json", "bytes", "raw"]))
    if kind == "bytes":
        return draw(st.binary(max_size=60)).replace(b"\n", b" ")
    if kind == "raw":
        return draw(RAW_LINES)
    if kind == "json":
        return json.dumps(draw(JSON_VALUES)).encode()
    fields = draw(GOOD_JOB if kind == "job" else JOB_FIELDS)
    return json.dumps({"id": draw(IDS), **fields}).encode()


class Handle:
    def __init__(self, job: dict[str, Any]) -> None:
        self.id = str(job["id"])
        self.job = job

    def get(self, timeout_s: float | None = None, *, raise_on_failure: bool = True) -> Result:
        text = str(self.job.get("prompt", ""))[:20]
        return Result(job_id=self.id, status="ok", instance="zai", model="m", step=0,
                      attempt=0, text=text, cost_usd=0.001)  # fmt: skip


class Client:
    """Validates, sizes and answers each job in memory, as the dispatcher and a lane would."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.submitted = 0

    def submit(self, job: dict[str, Any], *, strategy: str | None = None) -> Handle:
        parsed = parse_job(job)
        if parsed.payload_bytes() > MAX_JOB_BYTES:
            raise JobError(f"job {parsed.id} is over max_job_bytes")
        with self.lock:
            self.submitted += 1
        return Handle(job)


@FUZZ
@given(st.lists(batch_line(), max_size=12))
def test_fuzz_batch_any_lines_end_in_results_or_bad_lines(lines: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        src.write_bytes(b"".join(line + b"\n" for line in lines))
        client = Client()
        summary = run_batch(client, src, out, concurrency=2, timeout_s=5,
                            max_line_bytes=MAX_LINE_BYTES)  # fmt: skip
        assert summary.stopped_reason is None, summary.stop_message
        assert summary.lines == sum(1 for line in lines if line.strip())
        assert summary.ok + summary.bad_lines == summary.lines
        assert all(problem.startswith("line ") for problem in summary.problems)
        rows = out.read_bytes().split(b"\n")[:-1]  # JSONL: one line per newline, no other
        assert [json.loads(row)["status"] for row in rows] == ["ok"] * summary.ok
        assert len(rows) == client.submitted
        again = run_batch(Client(), src, out, max_line_bytes=MAX_LINE_BYTES)
        assert again.submitted == 0 and again.skipped_done >= summary.ok


def _file(content: bytes) -> Path:
    handle = tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False)  # noqa: SIM115
    handle.write(content)
    handle.close()
    return Path(handle.name)


JOB_FILE = (
    st.binary(max_size=200)
    | RAW_LINES
    | JOB_FIELDS.map(lambda fields: json.dumps(fields).encode())
    | st.builds(lambda job, extra: json.dumps({**job, **extra}).encode(), GOOD_JOB, JOB_FIELDS)
)


@FUZZ
@given(JOB_FILE, st.booleans())
def test_fuzz_job_file_ends_in_a_lanes_error_or_a_connection(content: bytes, stdin: bool) -> None:
    path = _file(content)
    env = {"REDIS_URL": "redis://127.0.0.1:1/0"}  # nothing there: refusals come first
    args = ["--config", str(EXAMPLE), "run", "--job", "-" if stdin else str(path)]
    try:
        result = CliRunner().invoke(cli_app, args, env=env, input=content if stdin else None)
    finally:
        path.unlink()
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit | LanesError), repr(exc)
    if isinstance(exc, LanesError):
        assert exc.exit_code in (2, 5)
        str(exc).encode()  # a message that can be printed


@FUZZ
@given(st.lists(batch_line(), max_size=8), st.booleans())
def test_fuzz_jsonl_file_prints_one_json_object_per_line(lines: list[bytes], stdin: bool) -> None:
    content = b"".join(line + b"\n" for line in lines)
    path = _file(content)
    args = ["--config", str(EXAMPLE), "classify", "--jsonl", "-" if stdin else str(path)]
    try:
        result = CliRunner().invoke(cli_app, args, input=content if stdin else None)
    finally:
        path.unlink()
    assert isinstance(result.exception, SystemExit | None), repr(result.exception)
    rows = [json.loads(row) for row in result.stdout.splitlines()]
    numbers = [n for n, line in enumerate(lines, 1) if line.strip()]
    assert [row["line"] for row in rows] == numbers
    assert all(("error" in row) != ("type" in row) for row in rows)
    assert result.exit_code == (2 if any("error" in row for row in rows) else 0)
