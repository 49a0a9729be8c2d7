"""A batch whose lanes have no worker says so within seconds instead of waiting out each
job's timeout; what it sent stays for the next run (real Redis, no worker on its prefix)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml

from lanes.client import Lanes

from ..conftest import LaneStack


def _nobody_config(lane_stack: LaneStack, tmp_path: Path) -> Path:
    """The session's config under a prefix no worker serves."""
    data = yaml.safe_load(lane_stack.config_path.read_text())
    data["redis_prefix"] = f"nobody-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "lanes.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _lines(path: Path, count: int) -> Path:
    path.write_text("".join(json.dumps({"id": i, "prompt": f"fact {i}", "instance": "zai"})
                            + "\n" for i in range(count)))  # fmt: skip
    return path


def test_batch_without_a_worker_stops_within_seconds(lane_stack: LaneStack, tmp_path: Path) -> None:
    config = lane_stack.config.model_copy(update={"redis_prefix": f"nobody-{uuid.uuid4().hex}"})
    started = time.monotonic()
    with Lanes(config, lane_stack.redis_url) as lanes:
        summary = lanes.batch(_lines(tmp_path / "in.jsonl", 3), tmp_path / "out.jsonl",
                              timeout_s=600)  # fmt: skip
    assert time.monotonic() - started < 60  # the jobs' own timeout is 600 s
    assert summary.stopped_reason == "no worker" and summary.exit_code == 7
    assert "lane zai, which no worker consumes" in summary.stop_message
    assert "lanes worker zai" in summary.stop_message
    assert summary.submitted == 3 and summary.unfinished == 3


def test_batch_cli_without_a_worker_says_so_when_piped(
    lane_stack: LaneStack, tmp_path: Path
) -> None:
    path = _nobody_config(lane_stack, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "lanes", "--config", str(path), "batch",
         str(_lines(tmp_path / "in.jsonl", 2)), "-o", str(tmp_path / "out.jsonl")],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )  # fmt: skip
    assert proc.returncode == 7, proc.stderr[-2000:]
    out = " ".join(proc.stdout.split())
    assert "which no worker consumes" in out and "run the batch again" in out
