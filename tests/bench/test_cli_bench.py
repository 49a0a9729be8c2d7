from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from lanes.bench.cli.throughput import cpu_table
from lanes.entry import app
from lanes.kernel.config import Config

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


def test_bench_throughput_runs_the_four_arms_in_rounds(
    redis_url: str, example_config: Config, tmp_path: Path
) -> None:
    report = _bench_json(example_config, tmp_path, redis_url, "throughput", "--jobs", "20",
                         "--workers", "1", "--concurrency", "4", "--rounds", "2")  # fmt: skip
    assert report["jobs"] == 20 and report["workers"] == 1
    rates = ("lanes_jobs_per_s", "lanes_no_ledger_jobs_per_s", "celery_noop_per_s",
             "sdk_task_per_s")  # fmt: skip
    assert len(report["rounds"]) == 2
    for key in rates:
        assert report[key] > 0
        assert report[key] == max(r[key] for r in report["rounds"])
    assert report["ratio"] == pytest.approx(
        report["lanes_jobs_per_s"] / report["celery_noop_per_s"], abs=2e-3
    )
    assert report["ratio_vs_sdk_task"] == pytest.approx(
        report["lanes_jobs_per_s"] / report["sdk_task_per_s"], abs=2e-3
    )
    assert report["ledger_ratio"] == pytest.approx(
        report["lanes_jobs_per_s"] / report["lanes_no_ledger_jobs_per_s"], abs=2e-3
    )
    # The ledger was on in the lanes arm: every job of it (warm-up and rounds) was recorded.
    assert report["ledger_outcomes"] == min(50, 20) + 2 * 20
    assert set(report["cpu_ms_per_job"]) == {"lanes", "lanes_no_ledger", "sdk_task", "celery_noop"}
    for arm, cpu in report["cpu_ms_per_job"].items():
        assert list(cpu) == ["dispatcher", "workers", "simulator", "redis", "total"], arm
        assert all(ms >= 0 for ms in cpu.values()), arm
        parts = sum(ms for kind, ms in cpu.items() if kind != "total")
        assert cpu["total"] == pytest.approx(parts, abs=3e-3), arm
    assert report["worker_peak_rss_mb"] > 0


def test_cpu_table_lists_every_arm_and_kind() -> None:
    cpu = {
        arm: {"dispatcher": 1.0, "workers": 2.0, "simulator": 0.5, "redis": 0.25, "total": 3.75}
        for arm in ("lanes", "sdk_task", "celery_noop")
    }
    out = Console(width=120, record=True)
    out.print(cpu_table(cpu))
    text = out.export_text()
    for word in ("lanes", "sdk_task", "celery_noop", "dispatcher", "simulator", "3.750"):
        assert word in text


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
