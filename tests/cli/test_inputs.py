"""Bad files and arguments given to the CLI: exit 2 and one line saying what is wrong,
before anything connects or is enqueued."""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from lanes.kernel import files as inputs
from lanes.kernel.files import MAX_INPUT_BYTES

from ..conftest import EXAMPLE
from .test_routing import json_lines, run_main

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens: proves nothing was attempted


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "is empty"),
        (b"{not json", "is not JSON"),
        (b"\xff\xfe{}", "is not UTF-8 text (byte 0)"),
        (b"[1, 2]", "must hold one JSON object"),
    ],
)
def test_cli_inputs_bad_job_file_exits_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    content: bytes,
    words: str,
) -> None:
    monkeypatch.setenv("REDIS_URL", DEAD_REDIS)
    job = tmp_path / "job.json"
    job.write_bytes(content)
    assert run_main(monkeypatch, "run", "--job", str(job)) == 2
    err = capsys.readouterr().err
    assert words in err and str(job) in err and "Traceback" not in err


def test_cli_inputs_missing_job_file_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("REDIS_URL", DEAD_REDIS)
    assert run_main(monkeypatch, "run", "--job", str(tmp_path / "nope.json")) == 2
    assert "cannot read job file" in capsys.readouterr().err


@pytest.mark.parametrize("timeout", ["0", "-5"])
def test_cli_inputs_timeout_must_be_positive(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], timeout: str
) -> None:
    monkeypatch.setenv("REDIS_URL", DEAD_REDIS)
    assert run_main(monkeypatch, "run", "hello", "--timeout", timeout) == 2
    assert "--timeout" in capsys.readouterr().err


def test_cli_inputs_a_non_utf8_jsonl_line_is_a_bad_line_and_the_rest_goes_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_bytes(b'{"text": "ok"}\n\xff\n{"text": "and this"}\n')
    assert run_main(monkeypatch, "classify", "--jsonl", str(rows)) == 2
    out = json_lines(capsys.readouterr().out)
    assert [row["line"] for row in out] == [1, 2, 3]
    assert out[1] == {"line": 2, "error": "JobError: not UTF-8 text (byte 0)"}
    assert "type" in out[0] and "type" in out[2]


def test_cli_inputs_run_on_a_lane_no_worker_serves_says_so(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    isolated_redis_url: str,
) -> None:
    import yaml

    from ..conftest import EXAMPLE

    data = yaml.safe_load(EXAMPLE.read_text())
    data["redis_url"] = isolated_redis_url  # a db no worker listens on
    path = tmp_path / "lanes.yaml"
    path.write_text(yaml.safe_dump(data))
    code = run_main(monkeypatch, "--config", str(path), "run", "hello", "--instance", "zai",
                    "--timeout", "60")  # fmt: skip
    assert code == 7
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert "lane zai, which no worker consumes" in err and "lanes worker zai" in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--instance", "nope"), "unknown instance or pool 'nope'"),
        (("--model", "gpt-17"), "unknown model 'gpt-17'"),
        (("--instance", "koala", "--model", "claude-opus-4-5"), "'koala' does not offer"),
        (("--max-tokens", "0"), "max_tokens"),
        (("--strategy", "bogus"), "unknown strategy 'bogus'"),
    ],
)
def test_cli_inputs_bad_job_exits_2_even_with_redis_down(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    words: str,
) -> None:
    monkeypatch.setenv("REDIS_URL", DEAD_REDIS)
    assert run_main(monkeypatch, "run", "hello", *args) == 2
    assert words in " ".join(capsys.readouterr().err.split())


# -- files that are not regular files, and files too large to read -----------------------------
def _one_gib() -> None:
    """``preexec_fn``: a command that would read forever fails for lack of memory, not the
    machine."""
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def lanes_process(*args: str) -> subprocess.CompletedProcess[str]:
    """The command in a process of its own, as a user runs it, with Redis unreachable (a
    refusal comes first), at most 1 GiB of memory and 60 s (a hang fails the test)."""
    cmd = [sys.executable, "-m", "lanes", "-c", str(EXAMPLE), *args]
    env = {**os.environ, "REDIS_URL": DEAD_REDIS, "COLUMNS": "200"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env,
                          stdin=subprocess.DEVNULL, preexec_fn=_one_gib)  # fmt: skip


@pytest.fixture(scope="module")
def fifo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A named pipe nothing ever writes to: opening it to read would wait forever."""
    path = tmp_path_factory.mktemp("fifo") / "pipe"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("run", "--job", "FIFO"), "cannot read job file FIFO: it is a pipe (FIFO)"),
        (("route", "--jsonl", "FIFO"), "cannot read --jsonl file FIFO: it is a pipe (FIFO)"),
        (("classify", "--jsonl", "/dev/zero"), "/dev/zero: it is a character device"),
        (("run", "--job", "/dev/zero"), "cannot read job file /dev/zero: it is a character"),
        (("pipeline", "--input", "/dev/zero"), "cannot read input /dev/zero: it is a character"),
    ],
)
def test_cli_inputs_a_file_argument_that_is_not_a_regular_file_is_refused_at_once(
    fifo: Path, args: tuple[str, ...], words: str
) -> None:
    args = tuple(str(fifo) if arg == "FIFO" else arg for arg in args)
    proc = lanes_process(*args)
    err = " ".join(proc.stderr.split())
    assert proc.returncode == 2, proc.stderr
    assert words.replace("FIFO", str(fifo), 1) in err and "give a regular file" in err
    assert "Traceback" not in err


def _sparse(path: Path, size: int, head: bytes = b"") -> Path:
    """A file of ``size`` bytes (``head``, then zeros) that takes no room on disk."""
    with path.open("wb") as file:
        file.write(head)
        file.truncate(size)
    return path


def test_cli_inputs_a_job_file_larger_than_the_limit_is_refused_with_the_limit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("REDIS_URL", DEAD_REDIS)
    job = _sparse(tmp_path / "job.json", MAX_INPUT_BYTES + 1, b'{"prompt": "')
    assert run_main(monkeypatch, "run", "--job", str(job)) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"job file {job} is larger than 32 MiB" in err


def test_cli_inputs_stdin_is_read_bounded(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", DEAD_REDIS)
    monkeypatch.setattr(inputs, "MAX_INPUT_BYTES", 64)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b" " * 10_000 + b"{}")))
    assert run_main(monkeypatch, "run", "--job", "-") == 2
    assert "job file - is larger than 64 bytes" in " ".join(capsys.readouterr().err.split())


def test_cli_inputs_a_jsonl_line_over_the_limit_is_a_bad_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = _sparse(tmp_path / "rows.jsonl", MAX_INPUT_BYTES + 100, b'{"text": "first"}\n')
    with rows.open("ab") as file:
        file.write(b'\n{"text": "after the long line"}\n')
    assert run_main(monkeypatch, "classify", "--jsonl", str(rows)) == 2
    out = json_lines(capsys.readouterr().out)
    assert [row["line"] for row in out] == [1, 2, 3]
    assert out[1] == {"line": 2, "error": "JobError: line longer than 32 MiB; skipped"}
    assert "type" in out[0] and "type" in out[2]


@pytest.mark.parametrize("field", ["system", "id", "metadata", "messages"])
def test_cli_inputs_a_job_file_with_text_that_is_not_utf8_names_the_field(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    field: str,
) -> None:  # fmt: skip
    job: dict[str, object] = {"prompt": "hello"}
    if field == "messages":
        job = {"messages": [{"role": "user", "content": "\udfff"}]}
    else:
        job[field] = {"k": "\udfff"} if field == "metadata" else "\udfff"
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job), encoding="ascii")  # "\udfff" as JSON writes it
    monkeypatch.setenv("REDIS_URL", DEAD_REDIS)
    assert run_main(monkeypatch, "run", "--job", str(path)) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "invalid job:" in err and "cannot be encoded as UTF-8" in err
    assert f"{field}." in err or f"{field}:" in err


@pytest.mark.parametrize("content", [b"[" * 100_000, b'{"max_tokens": ' + b"9" * 5000 + b"}"])
def test_cli_inputs_json_lanes_cannot_read_is_refused_cleanly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    content: bytes,
) -> None:  # fmt: skip
    monkeypatch.setenv("REDIS_URL", DEAD_REDIS)
    path = tmp_path / "job.json"
    path.write_bytes(content)
    assert run_main(monkeypatch, "run", "--job", str(path)) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"job file {path} is not JSON" in err
