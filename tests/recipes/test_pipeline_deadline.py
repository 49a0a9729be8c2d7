"""A pipeline is held to its deadline and its refusals name the step (real worker, real
Redis, the simulator)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from lanes.kernel.errors import JobError
from lanes.ops.stack import sim_profiles
from lanes.recipes.pipeline import parse_pipeline, run_pipeline

from ..conftest import LaneStack

VITAL_ON_CHEAP = {
    "name": "t",
    "steps": [
        {"name": "extract", "prompt": "Summarise {input}", "instance": "koala", "vital": False},
        {"name": "audit", "prompt": "Find the SQL injection in {previous}", "instance": "zai",
         "vital": True},
    ],
}  # fmt: skip


def test_pipeline_step_refused_at_submit_is_named(lane_stack: LaneStack) -> None:
    spec = parse_pipeline(VITAL_ON_CHEAP, "inline")
    with lane_stack.client() as lanes, pytest.raises(JobError) as caught:
        run_pipeline(lanes, spec, "some text", timeout_s=30)
    assert str(caught.value).startswith("pipeline step 'audit': the job pins cheap lane zai")


def test_pipeline_cli_names_the_refused_step_before_any_waiting(
    lane_stack: LaneStack, tmp_path: Path
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(VITAL_ON_CHEAP), encoding="utf-8")
    env = {**os.environ, "LANES_CONFIG": str(lane_stack.config_path)}
    proc = subprocess.run([sys.executable, "-m", "lanes", "pipeline", str(path)], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2
    err = " ".join(proc.stderr.split())
    assert "pipeline step 'audit'" in err and "waiting for it" not in err


def test_pipeline_deadline_cancels_the_steps_left(lane_stack: LaneStack) -> None:
    """The first step takes 6 s, the pipeline may take 1: it ends at its deadline, and the
    second step never calls its provider."""
    spec = parse_pipeline(
        {"name": "slow", "steps": [
            {"name": "a", "prompt": "Summarise {input}", "instance": "koala", "vital": False},
            {"name": "b", "prompt": "Polish {previous}", "instance": "claude1"},
        ]}, "inline",
    )  # fmt: skip
    slow = sim_profiles(lane_stack.config)["koala"].model_copy(
        update={"latency_s": 6.0, "latency_jitter_s": 0.0}
    )
    lane_stack.sim.set_profile("koala", slow)
    claude_before = lane_stack.sim.stats().get("claude1", {}).get("requests", 0)
    try:
        with lane_stack.client() as lanes:
            started = time.monotonic()
            run = run_pipeline(lanes, spec, f"doc {uuid.uuid4().hex}", timeout_s=1.0)
            assert time.monotonic() - started < 5.0  # long before step a could answer
            assert run.results == [None, None] and not run.ok
            assert [s["status"] for s in run.to_json()["steps"]] == ["timeout", "timeout"]
            time.sleep(7.0)  # step a's call ends; step b would start now, were it let
        assert lane_stack.sim.stats().get("claude1", {}).get("requests", 0) == claude_before
    finally:
        lane_stack.sim.set_profile("koala", sim_profiles(lane_stack.config)["koala"])
