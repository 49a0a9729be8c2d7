"""Bad files and arguments given to the CLI: exit 2 and one line saying what is wrong,
before anything connects or is enqueued."""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_cli_routing import run_main

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


def test_cli_inputs_non_utf8_jsonl_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_bytes(b'{"text": "ok"}\n\xff\n')
    assert run_main(monkeypatch, "classify", "--jsonl", str(rows)) == 2
    assert "not UTF-8 text" in capsys.readouterr().err


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
