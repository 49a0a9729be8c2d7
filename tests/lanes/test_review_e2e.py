"""``lanes review`` end to end: one Celery group over real workers and the simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from lanes.review import SAMPLE_DIFF, review
from lanes.reviewers import Reviewer, select_reviewers
from sim import Fault

from ..conftest import LaneStack

DIFF = SAMPLE_DIFF.read_text(encoding="utf-8")


def _fresh(diff: str) -> str:
    """``diff`` made unique: the response cache must not answer it."""
    return diff + f"+# {uuid.uuid4().hex}\n"


def test_review_fans_out_and_reports_each_reviewer(lane_stack: LaneStack) -> None:
    with lane_stack.client() as lanes:
        report = review(lanes, _fresh(DIFF), timeout_s=60, title="sample")
    data = report.to_json()
    parts = {p["reviewer"]: p for p in data["reviewers"]}
    assert report.ok and list(parts) == ["type-safety", "security", "architecture", "performance"]
    assert parts["type-safety"]["lanes"] == ["zai"]
    vital_lanes = {lane for name in ("security", "architecture", "performance")
                   for lane in parts[name]["lanes"]}  # fmt: skip
    assert vital_lanes <= {"claude2", "claude3"} and len(vital_lanes) == 2
    assert all(p["findings"] and p["cost_usd"] > 0 and p["chunks"] == 1 for p in parts.values())
    assert data["total_cost_usd"] == round(sum(p["cost_usd"] for p in parts.values()), 6)
    text = report.markdown()
    assert text.startswith("# Code review: sample")
    assert "| security | claude" in text and "## performance (" in text


def test_a_reviewer_whose_lane_fails_falls_back_and_the_report_says_so(
    lane_stack: LaneStack,
) -> None:
    for lane in ("claude2", "claude3"):
        lane_stack.sim.set_fault(lane, Fault(kind="500"))
    try:
        with lane_stack.client() as lanes:
            chosen = select_reviewers(lanes.config, agents_dir=Path("/none"),
                                      names=["type-safety", "security"])  # fmt: skip
            report = review(lanes, _fresh(DIFF), reviewers=chosen, timeout_s=90)
    finally:
        lane_stack.sim.clear_faults()
    parts = {p["reviewer"]: p for p in report.to_json()["reviewers"]}
    security = parts["security"]
    assert security["status"] == "ok", security["errors"]
    assert security["fell_back"] and security["lanes"] == ["claude1"]
    assert "zai" not in security["lanes"]
    assert parts["type-safety"]["fell_back"] == []
    assert "> fell back: claude" in report.markdown()


def test_a_diff_larger_than_the_window_is_split_into_chunks_that_fit(
    lane_stack: LaneStack, tmp_path: Path
) -> None:
    small = Reviewer("style", "style and naming", vital=False, instance="koala",
                     model="qwen2.5-coder:14b", max_tokens=300)  # fmt: skip
    files = "".join(
        f"diff --git a/m{i}.py b/m{i}.py\n--- a/m{i}.py\n+++ b/m{i}.py\n@@ -1,400 +1,400 @@\n"
        + "".join(
            f"+value_{i}_{n} = transform(value_{i}_{n - 1}, factor={n})\n" for n in range(400)
        )
        for i in range(12)
    )
    with lane_stack.client() as lanes:
        report = review(lanes, files, reviewers=[small], timeout_s=120)
    part = report.to_json()["reviewers"][0]
    assert part["status"] == "ok", part["errors"]
    assert part["chunks"] >= 3 and part["lanes"] == ["koala"]
    assert part["input_tokens"] >= len(files) // 4


def test_review_cli_writes_the_report_and_prints_json(
    lane_stack: LaneStack, tmp_path: Path
) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "security.md").write_text(
        "---\nname: security\ndescription: security review\nmodel: haiku\ninstance: zai\n---\n"
        "You hunt for vulnerabilities.\n",
        encoding="utf-8",
    )
    out = tmp_path / "review.md"
    env = {**os.environ, "LANES_CONFIG": str(lane_stack.config_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "lanes", "review", "--diff", str(SAMPLE_DIFF), "--agents",
         str(agents), "-r", "security", "-r", "type-safety", "-o", str(out), "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    security = next(p for p in data["reviewers"] if p["reviewer"] == "security")
    assert "zai" not in security["lanes"] and security["source"].endswith("security.md")
    assert any("instance zai dropped" in note for note in security["overrides"])
    assert "overrode instance zai dropped" in out.read_text(encoding="utf-8")
    bad = subprocess.run([sys.executable, "-m", "lanes", "review"], env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "give exactly one of" in bad.stderr
