"""A diff in chunks that fit, never truncated; files and git ranges as diffs."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lanes.kernel.errors import JobError
from lanes.recipes.review.diffs import (
    MAX_CHANGE_BYTES,
    files_as_diff,
    read_diff,
    read_files,
    split_diff,
)
from lanes.recipes.review.git_range import git_diff
from lanes.router.classifier import estimate_tokens


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


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
                   cwd=cwd, check=True, capture_output=True)  # fmt: skip


def test_git_diff_reads_a_range_and_reports_gits_error(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        _git(tmp_path, *args)

    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n", encoding="utf-8")
    git("add", "a.py")
    git("commit", "-qm", "one")
    (tmp_path / "a.py").write_text("x = 2\n", encoding="utf-8")
    git("commit", "-qam", "two")
    diff = git_diff("HEAD~1..HEAD", cwd=tmp_path)
    assert "-x = 1\n+x = 2" in diff
    with pytest.raises(JobError, match="git diff nope failed: fatal: ") as err:
        git_diff("nope", cwd=tmp_path)
    assert "\n" not in str(err.value)


# --- reading stays inside the given paths, never waits, never reads without bound ----------


def _tree_with_links(tmp_path: Path) -> Path:
    """``tmp_path/r/src`` with one text file and links out of the tree, a link loop, a
    dangling link and a FIFO; a secret outside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.env").write_text("API_KEY=sk-outside-the-tree\n", encoding="utf-8")
    src = tmp_path / "r" / "src"
    src.mkdir(parents=True)
    (src / "a.py").write_text("x = 1\n", encoding="utf-8")
    (src / "settings.py").symlink_to(outside / "secret.env")
    (src / "environ.py").symlink_to("/proc/self/environ")
    (src / "vendor").symlink_to(outside, target_is_directory=True)
    (src / "loop").symlink_to("..", target_is_directory=True)
    (src / "gone.py").symlink_to(tmp_path / "nowhere")
    os.mkfifo(src / "pipe")
    return src


@pytest.mark.timeout(30)  # a FIFO read would block: fail, do not hang
def test_files_under_a_directory_never_follow_a_link_nor_open_a_special_file(
    tmp_path: Path,
) -> None:
    src = _tree_with_links(tmp_path)
    read = read_files([src])
    assert "sk-outside-the-tree" not in read.diff and "PATH=" not in read.diff
    assert "+++ b/" + (src / "a.py").as_posix() in read.diff
    skipped = "\n".join(read.skipped)
    for name in ("settings.py", "environ.py", "vendor", "loop", "gone.py"):
        assert f"{name} (symbolic link)" in skipped
    assert "pipe (is a FIFO, not a regular file)" in skipped


def test_a_path_argument_that_is_or_goes_through_a_link_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _tree_with_links(tmp_path)
    with pytest.raises(JobError, match=r"is a symbolic link .*give what it points to"):
        files_as_diff([src / "settings.py"])
    monkeypatch.chdir(src.parent)
    with pytest.raises(JobError, match="src/vendor is a symbolic link"):
        files_as_diff([Path("src/vendor/secret.env")])
    assert "+x = 1" in files_as_diff([Path("src/a.py")])


@pytest.mark.timeout(30)  # a FIFO read would block: fail, do not hang
def test_a_device_or_a_fifo_is_refused_as_a_path_or_a_diff(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path in (Path("/dev/zero"), fifo):
        with pytest.raises(JobError, match="not a regular file"):
            files_as_diff([path])
        with pytest.raises(JobError, match="not a regular file"):
            read_diff(path)


def test_reads_stop_at_the_limit_and_say_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.diff"
    with big.open("wb") as handle:
        handle.truncate(MAX_CHANGE_BYTES + 1)  # sparse: nothing written
    with pytest.raises(JobError, match="holds more than 16 MiB"):
        read_diff(big)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"+x\n" * 400)))
    with pytest.raises(JobError, match="the diff on stdin holds more than"):
        read_diff(Path("-"), limit_bytes=1000)
    for i in range(3):
        (tmp_path / f"m{i}.py").write_text("y = 2\n" * 100, encoding="utf-8")
    with pytest.raises(JobError, match="the files to review hold"):
        files_as_diff([tmp_path / "m0.py", tmp_path / "m1.py", tmp_path / "m2.py"], 1500)
    assert files_as_diff([tmp_path / "m0.py", tmp_path / "m1.py"], 1500).count("+y = 2") == 200


def test_odd_file_names_stay_one_header_line_of_utf8(tmp_path: Path) -> None:
    (tmp_path / "new\nline.py").write_text("a = 1\n", encoding="utf-8")
    (tmp_path / os.fsdecode(b"latin\xe9.py")).write_text("b = 2\n", encoding="utf-8")
    diff = files_as_diff([tmp_path])
    diff.encode("utf-8")
    assert "new\\nline.py b/" in diff and "latin\\xe9.py" in diff
    assert [line for line in diff.splitlines() if line.startswith("diff --git")] == [
        line for line in diff.splitlines() if "diff --git" in line
    ]


def test_git_outside_a_repository_says_so_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(JobError) as err:
        git_diff("HEAD~1", cwd=tmp_path)
    message = str(err.value)
    assert "is not in a git repository" in message and "\n" not in message
    assert "usage" not in message


def test_git_range_is_never_read_as_an_option(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.py").write_text("x = 1\n", encoding="utf-8")
    kept = tmp_path / "keep.txt"
    kept.write_text("do not truncate\n", encoding="utf-8")
    for option in (f"--output={kept}", "-p", "--no-index"):
        with pytest.raises(JobError, match="starts with '-'"):
            git_diff(option, cwd=repo)
    assert kept.read_text(encoding="utf-8") == "do not truncate\n"
    with pytest.raises(JobError, match="control characters"):
        git_diff("HEAD\x00", cwd=repo)


def test_git_output_stops_at_the_limit(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n", encoding="utf-8")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "commit", "-qm", "one")
    (tmp_path / "a.py").write_text("x = 2\n" * 2000, encoding="utf-8")
    assert git_diff("HEAD", cwd=tmp_path).count("+x = 2") == 2000
    with pytest.raises(JobError, match="git diff HEAD holds more than"):
        git_diff("HEAD", cwd=tmp_path, limit_bytes=1000)
