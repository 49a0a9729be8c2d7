"""A diff in chunks that fit, never truncated; files and git ranges as diffs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kernel.errors import JobError
from lanes.diffs import files_as_diff, git_diff, split_diff
from router.classifier import estimate_tokens


def _diff(files: int, hunks: int, lines: int) -> str:
    parts = []
    for f in range(files):
        parts.append(f"diff --git a/f{f}.py b/f{f}.py\n--- a/f{f}.py\n+++ b/f{f}.py\n")
        for h in range(hunks):
            parts.append(f"@@ -{h * 100},{lines} +{h * 100},{lines} @@\n")
            parts.extend(f"+line {f}.{h}.{i} = compute({i})\n" for i in range(lines))
    return "".join(parts)


def _body_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("+line")]


@pytest.mark.parametrize("budget", [60, 300, 2000, 10**6])
def test_every_chunk_fits_and_every_line_is_in_exactly_one_chunk(budget: int) -> None:
    diff = _diff(files=4, hunks=3, lines=40)
    chunks = split_diff(diff, budget)
    assert all(estimate_tokens(chunk) <= budget for chunk in chunks)
    assert [line for c in chunks for line in _body_lines(c)] == _body_lines(diff)
    if budget == 10**6:
        assert chunks == [diff]


def test_a_hunk_keeps_its_file_header_in_every_chunk() -> None:
    diff = _diff(files=1, hunks=4, lines=30)
    chunks = split_diff(diff, estimate_tokens(diff) // 3)
    assert len(chunks) > 1
    assert all(chunk.startswith("diff --git a/f0.py") for chunk in chunks)


def test_one_enormous_line_is_cut_not_dropped() -> None:
    diff = "diff --git a/x b/x\n@@ -1 +1 @@\n+" + "x" * 10_000 + "\n"
    chunks = split_diff(diff, 500)
    assert all(estimate_tokens(c) <= 500 for c in chunks)
    assert sum(c.count("x") for c in chunks) >= 10_000


def test_files_read_as_a_new_file_diff(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\ny = 2\n", encoding="utf-8")
    (tmp_path / "pkg" / "blob.bin").write_bytes(b"\xff\xfe\x00")
    diff = files_as_diff([tmp_path / "pkg"])
    assert "+++ b/" in diff and "@@ -0,0 +1,2 @@\n+x = 1\n+y = 2\n" in diff
    assert "blob.bin" not in diff
    with pytest.raises(JobError, match="does not exist"):
        files_as_diff([tmp_path / "missing.py"])


def test_git_diff_reads_a_range_and_reports_gits_error(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
                       cwd=tmp_path, check=True, capture_output=True)  # fmt: skip

    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n", encoding="utf-8")
    git("add", "a.py")
    git("commit", "-qm", "one")
    (tmp_path / "a.py").write_text("x = 2\n", encoding="utf-8")
    git("commit", "-qam", "two")
    diff = git_diff("HEAD~1..HEAD", cwd=tmp_path)
    assert "-x = 1\n+x = 2" in diff
    with pytest.raises(JobError, match="git diff nope failed"):
        git_diff("nope", cwd=tmp_path)
