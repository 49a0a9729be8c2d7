"""``lanes review --git RANGE``: git's diff of a range, read as a review reads anything: in one
line when it cannot be had, never past :data:`lanes.recipes.review.diffs.MAX_CHANGE_BYTES`, never
hanging.

The range goes after ``--end-of-options``, so git never reads it as an option (``--output=F``
would write F); a range starting with ``-`` is refused before git runs.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import IO

from lanes.kernel.errors import JobError
from lanes.recipes.review.diffs import MAX_CHANGE_BYTES, bounded

GIT_TIMEOUT_S = 60.0
_READ_BYTES = 1 << 16


def check_range(revision_range: str) -> None:
    """A ``--git`` range git can only read as revisions: not empty, not an option."""
    if not revision_range.strip():
        raise JobError("--git needs a revision range, e.g. main...HEAD or HEAD~1")
    if revision_range.startswith("-"):
        raise JobError(
            f"--git {revision_range!r} starts with '-': give a revision range such as"
            " main...HEAD or HEAD~1, not a git option"
        )
    if not revision_range.isprintable():
        raise JobError(f"--git {revision_range!r} holds control characters: give a range"
                       " such as main...HEAD")  # fmt: skip


def git_diff(
    revision_range: str, cwd: Path | None = None, limit_bytes: int = MAX_CHANGE_BYTES
) -> str:
    """``git diff RANGE`` in ``cwd`` (the range passed after ``--end-of-options``, so it is
    never read as an option); a JobError in one line if this is not a git repository, if
    git fails, or if the diff holds more than ``limit_bytes``."""
    check_range(revision_range)
    _require_repository(cwd)
    args = ["diff", "--no-color", "--no-ext-diff", "--no-textconv", "--end-of-options",
            revision_range, "--"]  # fmt: skip
    code, out, err = run_git(args, cwd, limit_bytes, f"git diff {revision_range}")
    if code != 0:
        raise JobError(f"git diff {revision_range} failed: {_first_line(err)}")
    return out.decode("utf-8", "replace")


def _require_repository(cwd: Path | None) -> None:
    code, _, err = run_git(["rev-parse", "--git-dir"], cwd, _READ_BYTES, "git rev-parse")
    if code == 0:
        return
    here = cwd or Path.cwd()
    if "not a git repository" in err:
        raise JobError(
            f"{here} is not in a git repository: run lanes review --git from inside one,"
            " or review files (lanes review PATH...) or a diff (--diff FILE)"
        )
    raise JobError(f"git cannot read the repository at {here}: {_first_line(err)}")


def _first_line(err: str) -> str:
    """The line of git's message that says what is wrong (its usage text left out)."""
    lines = [line.strip() for line in err.splitlines() if line.strip()]
    said = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (said or lines or ["no message"])[0][:300]


def run_git(
    args: list[str], cwd: Path | None, limit_bytes: int, what: str
) -> tuple[int, bytes, str]:
    """``git ARGS``: exit code, stdout (a JobError past ``limit_bytes`` or GIT_TIMEOUT_S, the
    process killed) and the start of stderr."""
    try:
        proc = subprocess.Popen(["git", *args], cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    except OSError as exc:
        raise JobError(f"cannot run git: {exc.strerror}; install git or review a diff"
                       " file (--diff FILE)") from None  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    err: list[bytes] = []
    drain = threading.Thread(target=_drain, args=(proc.stderr, err), daemon=True)
    late = threading.Event()

    def stop() -> None:
        late.set()
        proc.kill()

    timer = threading.Timer(GIT_TIMEOUT_S, stop)
    drain.start()
    timer.start()
    read_all = False
    with proc:
        try:
            out = bounded(proc.stdout, what, limit_bytes)
            read_all = True
        finally:
            timer.cancel()
            if not read_all:
                proc.kill()  # more than the limit: git is not read to its end
            code = proc.wait()
            drain.join()  # before the streams close: it must not read a closed pipe
    if late.is_set():
        raise JobError(f"{what} did not finish within {GIT_TIMEOUT_S:g}s")
    return code, out, b"".join(err).decode("utf-8", "replace")


def _drain(stream: IO[bytes], into: list[bytes]) -> None:
    """Read ``stream`` to its end, keeping the first 64 KiB (git must never block on it)."""
    kept = 0
    while chunk := stream.read(_READ_BYTES):
        if kept < _READ_BYTES:
            into.append(chunk)
            kept += len(chunk)
