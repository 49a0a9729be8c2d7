"""Pipelines: a Celery chain across lanes, each step routed, fed the answer of the one before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from lanes.broker.chain_links import PREVIOUS
from lanes.kernel.errors import ConfigError
from lanes.recipes.pipeline import EXAMPLE, Pipeline, load_pipeline, parse_pipeline, run_pipeline
from lanes.sim import Fault, expected_reply

from ..conftest import LaneStack


def test_the_example_pipeline_extracts_locally_and_synthesises_on_claude(
    lane_stack: LaneStack,
) -> None:
    spec = load_pipeline(EXAMPLE)
    document = f"# Notes {uuid.uuid4().hex}\nRevenue grew 12% while churn fell to 3%.\n"
    with lane_stack.client() as lanes:
        run = run_pipeline(lanes, spec, document, timeout_s=60)
    assert run.ok, run.to_json()
    first, second = run.results
    assert first is not None and second is not None
    assert (first.instance, second.instance) == ("koala", "claude1")
    fed = spec.jobs(document)[1]["prompt"].replace(PREVIOUS, first.text)
    want = expected_reply(second.model, [{"role": "user", "content": fed}], None, 1000)
    assert second.text == want == run.output
    assert run.to_json()["total_cost_usd"] == round(first.cost_usd + second.cost_usd, 6)


def test_a_failed_step_stops_the_pipeline_with_its_reason(lane_stack: LaneStack) -> None:
    spec = parse_pipeline(
        {"name": "t", "steps": [
            {"name": "a", "prompt": "Summarise {input}", "instance": "koala",
             "vital": False, "max_tokens": 100},
            {"name": "b", "prompt": "Polish {previous}", "instance": "claude1", "max_tokens": 100},
        ]}, "inline",
    )  # fmt: skip
    lane_stack.sim.set_fault("koala", Fault(kind="500"))
    try:
        with lane_stack.client() as lanes:
            run = run_pipeline(lanes, spec, f"text {uuid.uuid4().hex}", timeout_s=90)
    finally:
        lane_stack.sim.clear_faults()
    first, second = run.results
    assert first is not None and second is not None and not run.ok
    assert first.status == "failed"
    assert second.status == "failed" and f"(job {first.job_id}) failed" in (second.error or "")
    assert second.cost_usd == 0 and run.output == ""


def test_pipeline_files_are_checked_with_the_file_and_key() -> None:
    with pytest.raises(ConfigError, match=r"steps\[0\].prompt.*\{input\}"):
        parse_pipeline({"steps": [{"name": "a", "prompt": "no input"}]}, "p.yaml")
    with pytest.raises(ConfigError, match=r"steps\[1\]: unknown key\(s\) lane"):
        steps = [{"name": "a", "prompt": "{input}"}, {"name": "b", "prompt": "x", "lane": "k"}]
        parse_pipeline({"steps": steps}, "p.yaml")
    with pytest.raises(ConfigError, match="no steps"):
        parse_pipeline({"steps": []}, "p.yaml")


def test_later_steps_take_the_previous_answer_where_they_say() -> None:
    spec = Pipeline("p", [{"name": "a", "prompt": "A {input}"},
                          {"name": "b", "prompt": "B {previous} then {input}"}])  # fmt: skip
    jobs = spec.jobs("{previous}")
    assert jobs[0]["prompt"] == "A {previous}"  # the input is text, never a placeholder
    assert jobs[1]["prompt"] == f"B {PREVIOUS} then {{previous}}"
    assert all(job["cache"] is False for job in jobs)


def test_pipeline_cli_runs_the_shipped_example(lane_stack: LaneStack, tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Plan {uuid.uuid4().hex}\nShip in May.\n", encoding="utf-8")
    env = {**os.environ, "LANES_CONFIG": str(lane_stack.config_path)}
    proc = subprocess.run([sys.executable, "-m", "lanes", "pipeline", "--input", str(doc),
                           "--json"], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    assert [s["lane"] for s in data["steps"]] == ["koala", "claude1"]
    assert data["ok"] and data["output"] == data["steps"][1]["text"]


def test_a_shared_cache_prefix_goes_ahead_of_every_step() -> None:
    spec = parse_pipeline(
        {"name": "doc", "cache_prefix": "The document:\n{input}", "steps": [
            {"name": "summary", "prompt": "Summarise the document above."},
            {"name": "risks", "prompt": "List its risks.", "cache_ttl": "1h"},
            {"name": "own", "prompt": "Polish {previous}", "cache_prefix": "Style guide"},
        ]}, "inline",
    )  # fmt: skip
    jobs = spec.jobs("TEXT")
    assert [job["cache_prefix"] for job in jobs] == [
        "The document:\nTEXT", "The document:\nTEXT", "Style guide"]  # fmt: skip
    assert jobs[1]["cache_ttl"] == "1h"


def test_a_cache_prefix_must_be_text() -> None:
    with pytest.raises(ConfigError, match="cache_prefix"):
        parse_pipeline({"cache_prefix": 3, "steps": [{"name": "a", "prompt": "{input}"}]}, "f")
