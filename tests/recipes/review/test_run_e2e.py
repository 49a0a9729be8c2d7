"""``lanes review`` end to end: one Celery group over real workers and the simulator."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
import uuid
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from lanes.client import Lanes
from lanes.kernel.errors import JobError
from lanes.recipes.review.reviewers import Reviewer, select_reviewers
from lanes.recipes.review.run import SAMPLE_DIFF, ReviewEstimate, review
from lanes.sim import Fault

from ...conftest import LaneStack

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


def _cli(lane_stack: LaneStack, *args: str, cwd: Path | None = None) -> CompletedProcess[str]:
    env = {**os.environ, "LANES_CONFIG": str(lane_stack.config_path)}
    return subprocess.run([sys.executable, "-m", "lanes", "review", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _type_safety(lanes: Lanes) -> list[Reviewer]:
    return select_reviewers(lanes.config, agents_dir=Path("/none"), names=["type-safety"])


def test_review_of_files_sends_nothing_a_link_points_to_and_notes_what_it_left_out(
    lane_stack: LaneStack, tmp_path: Path
) -> None:
    (tmp_path / "outside.env").write_text("API_KEY=sk-outside\n", encoding="utf-8")
    (tmp_path / "r" / "src").mkdir(parents=True)
    (tmp_path / "r" / "src" / "a.py").write_text(f"x = '{uuid.uuid4().hex}'\n", "utf-8")
    (tmp_path / "r" / "src" / "settings.py").symlink_to(tmp_path / "outside.env")
    agents = tmp_path / "r" / ".claude" / "agents"
    agents.mkdir(parents=True)
    (agents / "test-writer.md").write_text("---\nname: test-writer\n---\nWrite tests.\n", "utf-8")
    proc = _cli(lane_stack, "src", "-r", "type-safety", "--json", cwd=tmp_path / "r")
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    text = (tmp_path / "r" / "src" / "a.py").read_text(encoding="utf-8")
    only_a = ("diff --git a/src/a.py b/src/a.py\nnew file mode 100644\n--- /dev/null\n"
              f"+++ b/src/a.py\n@@ -0,0 +1,1 @@\n+{text}")  # fmt: skip
    assert data["diff_bytes"] == len(only_a.encode("utf-8"))
    notes = "\n".join(data["notes"])
    assert "src/settings.py (symbolic link)" in notes
    assert ".claude/agents/test-writer.md" in notes and "--agents .claude/agents" in notes


def test_a_reviewer_pinned_by_an_agent_file_reports_the_pin_as_its_rule(
    lane_stack: LaneStack,
) -> None:
    pinned = Reviewer("style", "style", vital=False, instance="claude1",
                      source="agents/style.md")  # fmt: skip
    with lane_stack.client() as lanes:
        report = review(lanes, _fresh(DIFF), reviewers=[pinned], timeout_s=60)
    part = report.to_json()["reviewers"][0]
    assert part["status"] == "ok" and part["lanes"] == ["claude1"]
    assert part["rules"] == ["pinned by agent file agents/style.md (instance: claude1)"]


def test_a_review_answered_from_the_cache_and_the_simulator_says_so(
    lane_stack: LaneStack,
) -> None:
    diff = _fresh(DIFF)
    with lane_stack.client() as lanes:
        first = review(lanes, diff, reviewers=_type_safety(lanes), timeout_s=60).to_json()
        again = review(lanes, diff, reviewers=_type_safety(lanes), timeout_s=60)
    bought, cached = first["reviewers"][0], again.to_json()["reviewers"][0]
    assert bought["simulated"] and not bought["cached"] and first["simulated_lanes"] == ["zai"]
    assert cached["cached"] and cached["cost_usd"] == 0
    assert cached["simulated"]  # bought from the simulator: a hit says so too
    assert cached["cost_saved_usd"] == bought["cost_usd"] > 0
    text = again.markdown()
    assert "**Cached:** 1 job(s) answered from the response cache" in text
    assert "| ok (cached) |" in text and f"(saved {bought['cost_usd']:.6f}) | cached |" in text


def test_the_estimate_comes_before_anything_is_sent(
    lane_stack: LaneStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[ReviewEstimate] = []
    with lane_stack.client() as lanes:
        sent: list[int] = []
        submit = lanes.dispatcher.submit_group

        def counted(jobs: list[Any], **options: Any) -> Any:
            sent.append(len(jobs))
            return submit(jobs, **options)

        monkeypatch.setattr(lanes.dispatcher, "submit_group", counted)
        with pytest.raises(JobError, match=r"not sent: 4 job\(s\) on vital, zai: estimated"):
            review(lanes, _fresh(DIFF), timeout_s=60, max_cost_usd=0.000001)
        assert sent == []
        report = review(lanes, _fresh(DIFF), timeout_s=60, on_estimate=shown.append)
    assert report.ok and sent == [4]
    (estimate,) = shown
    assert (estimate.jobs, estimate.lanes) == (4, ("vital", "zai"))
    assert 0 < estimate.cost_usd < 1


def test_review_cli_max_cost_refuses_with_the_estimate(lane_stack: LaneStack) -> None:
    proc = _cli(lane_stack, "--diff", str(SAMPLE_DIFF), "--max-cost", "0.000001", "--json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "the review was not sent: 4 job(s) on vital, zai: estimated cost $" in proc.stderr


def test_review_cli_on_a_terminal_asks_before_sending(lane_stack: LaneStack) -> None:
    env = {**os.environ, "LANES_CONFIG": str(lane_stack.config_path), "COLUMNS": "200"}
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lanes", "review", "--diff", str(SAMPLE_DIFF), "-r", "security"],
        stdin=secondary, stdout=secondary, stderr=secondary, env=env, close_fds=True,
    )  # fmt: skip
    os.close(secondary)
    try:
        seen = _read_until(primary, "Send the review? [y/N]")
        assert "1 job(s) on vital: estimated cost $" in seen, seen
        os.write(primary, b"n\n")
        seen += _read_until(primary, "")
        assert proc.wait(timeout=60) == 1 and "nothing sent" in seen
    finally:
        proc.kill()
        proc.wait()
        os.close(primary)


def _read_until(fd: int, wanted: str, guard_s: float = 90.0) -> str:
    """What the terminal shows until ``wanted`` appears (or it closes: ``wanted`` "")."""
    seen = ""
    stop = time.monotonic() + guard_s
    while (not wanted or wanted not in seen) and time.monotonic() < stop:
        if not select.select([fd], [], [], 1.0)[0]:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the other side closed
            break
        if not chunk:
            break
        seen += chunk.decode("utf-8", "replace")
    assert wanted in seen, f"{wanted!r} never shown; the terminal showed: {seen[-1500:]!r}"
    return seen


def test_a_deadline_that_passes_before_sending_sends_nothing(
    lane_stack: LaneStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    with lane_stack.client() as lanes:
        calls: list[int] = []
        monkeypatch.setattr(lanes.dispatcher, "submit_group", lambda jobs, **kw: calls.append(1))
        report = review(lanes, _fresh(DIFF), timeout_s=1e-6)
    data = report.to_json()
    assert calls == [] and not report.ok and report.abandoned == []
    assert data["not_sent"] == 4 and all(p["job_ids"] == [] for p in data["reviewers"])
    assert {p["status"] for p in data["reviewers"]} == {"not sent"}


def test_at_the_deadline_the_review_stops_and_names_the_jobs_it_abandoned(
    lane_stack: LaneStack,
) -> None:
    lane_stack.sim.set_fault("zai", Fault(kind="timeout", delay_s=5.0, count=1))
    try:
        with lane_stack.client() as lanes:
            chosen = select_reviewers(lanes.config, agents_dir=Path("/none"),
                                      names=["type-safety", "security"])  # fmt: skip
            report = review(lanes, _fresh(DIFF), reviewers=chosen, timeout_s=2.0)
            data = report.to_json()
            late = {p["reviewer"]: p for p in data["reviewers"]}["type-safety"]
            standing = lanes.stores.jobs.result(late["job_ids"][0])
    finally:
        lane_stack.sim.clear_faults()
    parts = {p["reviewer"]: p for p in data["reviewers"]}
    assert parts["security"]["status"] == "ok"
    assert late["status"] == "timeout" and late["errors"][0].startswith("cancelled: job")
    assert [h.id for h in report.abandoned] == late["job_ids"] == data["abandoned"]
    assert standing is not None and standing.error == (
        "cancelled: the review's 2s deadline passed first"
    )
    assert "1 job(s) abandoned unfinished and cancelled" in report.markdown()
    assert late["job_ids"][0] in report.markdown()
