"""What a review reads: a diff from a file, from ``git diff``, or files shown as a new-file diff;
and a diff split into chunks that each fit a token budget.

Splitting keeps a diff readable: whole files where they fit, else whole hunks with their file's
header repeated, and only a hunk larger than the budget is cut between lines.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

from kernel.errors import JobError
from router.classifier import estimate_tokens

FILE_START = "diff --git "
HUNK_START = "@@"
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}


def split_diff(diff: str, budget_tokens: int) -> list[str]:
    """``diff`` as chunks of at most ``budget_tokens`` (estimated) each, in order; every line
    of ``diff`` is in exactly one chunk (a file's header is repeated before its later hunks)."""
    if estimate_tokens(diff) <= budget_tokens:
        return [diff]
    pieces: list[str] = []
    for section in _sections(diff.splitlines(keepends=True), FILE_START):
        pieces.extend(_fit_file(section, budget_tokens))
    return _pack(pieces, budget_tokens)


def _sections(lines: list[str], marker: str) -> Iterator[list[str]]:
    """``lines`` cut before every line starting with ``marker`` (the first piece may be a
    preamble without one)."""
    current: list[str] = []
    for line in lines:
        if line.startswith(marker) and current:
            yield current
            current = []
        current.append(line)
    if current:
        yield current


def _fit_file(section: list[str], budget: int) -> list[str]:
    """One file's section: whole if it fits, else its hunks each behind the file's header."""
    text = "".join(section)
    if estimate_tokens(text) <= budget:
        return [text]
    hunks = list(_sections(section, HUNK_START))
    header = "".join(hunks.pop(0)) if hunks and not hunks[0][0].startswith(HUNK_START) else ""
    room = max(1, budget - estimate_tokens(header))
    pieces = []
    for hunk in hunks or [section]:
        for part in _fit_lines(hunk, room):
            pieces.append(header + part)
    return pieces


def _fit_lines(lines: list[str], budget: int) -> Iterator[str]:
    """``lines`` packed into pieces within ``budget``; a single line too long is cut."""
    current: list[str] = []
    size = 0
    for line in lines:
        for part in _cut(line, budget):
            tokens = estimate_tokens(part)
            if current and size + tokens > budget:
                yield "".join(current)
                current, size = [], 0
            current.append(part)
            size += tokens
    if current:
        yield "".join(current)


def _cut(line: str, budget: int) -> Iterator[str]:
    """A line longer than the budget in pieces (a minified file, a lock file)."""
    if estimate_tokens(line) <= budget:
        yield line
        return
    width = max(1, budget * 4 if line.isascii() else budget)
    for start in range(0, len(line), width):
        yield line[start : start + width]


def _pack(pieces: Iterable[str], budget: int) -> list[str]:
    """Neighbouring pieces joined while they fit together."""
    chunks: list[str] = []
    size = 0
    for piece in pieces:
        tokens = estimate_tokens(piece)
        if chunks and size + tokens <= budget:
            chunks[-1] += piece
            size += tokens
        else:
            chunks.append(piece)
            size = tokens
    return chunks


def git_diff(revision_range: str, cwd: Path | None = None) -> str:
    """``git diff RANGE`` in ``cwd``; a JobError saying what git said if it fails."""
    try:
        proc = subprocess.run(
            ["git", "diff", "--no-color", "--no-ext-diff", revision_range, "--"],
            cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JobError(f"cannot run git diff {revision_range}: {exc}") from None
    if proc.returncode != 0:
        raise JobError(f"git diff {revision_range} failed: {proc.stderr.strip()[:500]}")
    return proc.stdout


def files_as_diff(paths: Iterable[Path]) -> str:
    """Files (directories: their text files, recursively) as one new-file diff, so that a
    review of files reads like a review of a change."""
    parts = []
    for path in _files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary: nothing a reviewer can read
        except OSError as exc:
            raise JobError(f"cannot read {path}: {exc.strerror}") from None
        parts.append(_new_file(path, text))
    if not parts:
        raise JobError("no readable text file in the given paths")
    return "".join(parts)


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if not path.exists():
            raise JobError(f"{path} does not exist")
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not SKIP_DIRS.intersection(child.parts):
                    yield child
        else:
            yield path


def _new_file(path: Path, text: str) -> str:
    lines = text.splitlines()
    body = "".join(f"+{line}\n" for line in lines)
    name = path.as_posix()
    return (
        f"diff --git a/{name} b/{name}\nnew file mode 100644\n--- /dev/null\n+++ b/{name}\n"
        f"@@ -0,0 +1,{len(lines)} @@\n{body}"
    )
