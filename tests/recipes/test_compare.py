"""``lanes compare``: one job on several lanes at once, side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from rich.console import Console

from lanes.cli.compare import side_by_side
from lanes.client import Lanes
from lanes.kernel.config import Config
from lanes.kernel.errors import ConfigError, NoWorker
from lanes.recipes.compare import Target, compare, compare_jobs, parse_targets

from ..conftest import LaneStack


def test_targets_are_checked_against_the_config(example_config: Config) -> None:
    assert parse_targets(example_config, "claude1:claude-haiku-4-5, zai") == [
        Target("claude1", "claude-haiku-4-5"), Target("zai"),
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="unknown lane 'nope'"):
        parse_targets(example_config, "claude1,nope")
    with pytest.raises(ConfigError, match=r"does not serve 'glm-4\.6'"):
        parse_targets(example_config, "claude1:glm-4.6,zai")
    with pytest.raises(ConfigError, match="at least two"):
        parse_targets(example_config, "claude1")
    jobs = compare_jobs({"prompt": "p", "id": "x"}, [Target("zai"), Target("koala", "m")])
    assert [(j["instance"], j.get("model"), j["cache"]) for j in jobs] == [
        ("zai", None, False), ("koala", "m", False),
    ]  # fmt: skip
    assert all("id" not in j for j in jobs)


def test_compare_runs_the_job_on_each_lane(lane_stack: LaneStack) -> None:
    prompt = f"Name three sorting algorithms {uuid.uuid4().hex}"
    with lane_stack.client() as lanes:
        targets = parse_targets(lanes.config, "claude1:claude-haiku-4-5,zai,koala")
        result = compare(lanes, {"prompt": prompt, "max_tokens": 200}, targets, timeout_s=60)
    runs = result.to_json()["runs"]
    assert [(r["lane"], r["status"]) for r in runs] == [
        ("claude1", "ok"), ("zai", "ok"), ("koala", "ok"),
    ]  # fmt: skip
    assert runs[0]["model"] == "claude-haiku-4-5"
    assert all(r["text"] and r["output_tokens"] > 0 for r in runs)
    assert runs[2]["cost_usd"] < runs[0]["cost_usd"]
    console = Console(width=200, record=True)
    console.print(side_by_side(result.to_json()))
    shown = console.export_text()
    assert "claude1:claude-haiku-4-5" in shown and "koala/" in shown


def test_compare_cli_prints_json_and_refuses_vital_work_on_a_cheap_lane(
    lane_stack: LaneStack,
) -> None:
    env = {**os.environ, "LANES_CONFIG": str(lane_stack.config_path)}
    base = [sys.executable, "-m", "lanes", "compare", f"hello {uuid.uuid4().hex}"]
    proc = subprocess.run([*base, "--lanes", "claude1,zai", "--json"], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [r["lane"] for r in json.loads(proc.stdout)["runs"]] == ["claude1", "zai"]
    vital = subprocess.run([*base, "--lanes", "claude1,zai", "--vital"], env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert vital.returncode == 2, vital.stderr
    assert "pins cheap lane zai" in vital.stderr


def test_compare_refuses_a_target_named_twice(example_config: Config) -> None:
    with pytest.raises(ConfigError, match="claude1 is listed twice"):
        parse_targets(example_config, "claude1,zai,claude1")
    with pytest.raises(ConfigError, match=r"zai:glm-4\.6 is listed twice"):
        parse_targets(example_config, "zai:glm-4.6,zai:glm-4.6")
    assert len(parse_targets(example_config, "zai,zai:glm-4.6")) == 2


def test_compare_without_workers_says_so_and_cancels(lane_stack: LaneStack) -> None:
    """A deployment nobody serves (its own prefix on the same Redis): no waiting out the
    timeout, and nothing left queued to run later."""
    nobody = lane_stack.config.model_copy(update={"redis_prefix": f"nobody-{uuid.uuid4().hex[:8]}"})
    with Lanes(nobody, lane_stack.redis_url) as lanes:
        targets = parse_targets(nobody, "claude1,zai")
        with pytest.raises(NoWorker, match="no worker consumes") as caught:
            compare(lanes, {"prompt": "hello", "max_tokens": 20}, targets, timeout_s=600)
        assert caught.value.lanes == ["claude1", "zai"]
        assert "2 job(s) of the comparison cancelled" in str(caught.value)
        queued = _queued_ids(lanes)  # still in their queues: a worker started later ...
        assert len(queued) == 2 and lanes.stores.jobs.waiting_on(queued) == {}
        for result in lanes.stores.jobs.results(queued):  # ... finds them ended, and calls none
            assert result is not None and (result.error or "").startswith("cancelled: ")


def _queued_ids(lanes: Lanes) -> list[str]:
    """The ids of the jobs with a message in one of the deployment's queues."""
    client = lanes.redis
    raws = [raw for lane in lanes.config.lanes()
            for raw in client.lrange(lanes.keys.queue(lane), 0, -1)]  # fmt: skip
    return [json.loads(raw)["headers"]["id"] for raw in raws]
