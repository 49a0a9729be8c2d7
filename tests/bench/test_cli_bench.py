from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kernel.config import Config
from lanes.cli.app import app

from ..conftest import write_config

runner = CliRunner()


def test_bench_classify_reports_accuracy_and_confusion(tmp_path: Path) -> None:
    rows = [
        {"text": "Write unit tests for the invoice parser", "type": "testing"},
        {"text": "Fix crash when the config file is empty", "type": "debugging"},
        {"text": "Document the retry options in the README", "type": "documentation"},
        {"text": "Write unit tests for the tokenizer", "type": "documentation"},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = runner.invoke(app, ["bench", "classify", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["total"] == 4 and report["correct"] == 3
    assert report["confusion"]["documentation"]["testing"] == 1
    assert "misses" not in report


def test_bench_classify_missing_file_is_bad_input(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "classify", str(tmp_path / "none.jsonl")])
    assert result.exit_code != 0
    assert "no such file" in str(result.exception)


def _bench_json(config: Config, tmp_path: Path, redis_url: str, *args: str, **updates: object
                ) -> dict[str, Any]:  # fmt: skip
    """Run ``lanes bench ARGS --json`` on ``config`` (its own state dir, the test Redis)."""
    _, path = write_config(config, tmp_path, redis_url=redis_url,
                           state_dir=str(tmp_path / "state"), **updates)  # fmt: skip
    result = runner.invoke(app, ["--config", str(path), "bench", *args, "--json"])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.output.strip().splitlines()[-1])
    return report


def test_bench_throughput_runs_both_kinds_in_rounds(
    redis_url: str, example_config: Config, tmp_path: Path
) -> None:
    report = _bench_json(example_config, tmp_path, redis_url, "throughput", "--jobs", "20",
                         "--workers", "1", "--concurrency", "4", "--rounds", "2")  # fmt: skip
    assert report["jobs"] == 20 and report["workers"] == 1
    assert len(report["rounds"]) == 2
    assert report["lanes_jobs_per_s"] == max(r["lanes_jobs_per_s"] for r in report["rounds"])
    assert report["celery_noop_per_s"] == max(r["celery_noop_per_s"] for r in report["rounds"])
    assert report["ratio"] == pytest.approx(
        report["lanes_jobs_per_s"] / report["celery_noop_per_s"], abs=2e-3
    )
    assert report["worker_peak_rss_mb"] > 0


def test_bench_ratelimit_holds_the_pool_under_its_limits(
    redis_url: str, example_config: Config, tmp_path: Path
) -> None:
    # The warm-up drains the buckets' initial full minute; the window then runs at refill rate.
    # A 2% margin (12 requests a minute per account) absorbs a loaded test machine's delays
    # between reserving capacity and the request reaching the simulator.
    report = _bench_json(example_config, tmp_path, redis_url, "ratelimit", "--workers", "2",
                         "--duration", "5", "--warmup", "6", "--latency", "0.2",
                         limit_margin=0.02)  # fmt: skip
    assert report["workers"] == 2 and report["configured_rpm"] == 1200
    assert report["provider_429s"] == 0
    assert report["achieved_rpm"] > 0
    assert report["utilization"] == pytest.approx(
        report["achieved_rpm"] / report["configured_rpm"], abs=2e-3
    )
