"""What a review reads: a diff from a file, from ``git diff``, or files shown as a new-file diff;
and a diff split into chunks that each fit a token budget.

Reading never leaves the given paths and never waits: inside a directory a symbolic link is
skipped, as are devices, FIFOs and sockets; a file is opened without blocking and refused
unless it is a regular file once open; every read stops at :data:`MAX_CHANGE_BYTES`.

Splitting keeps a diff readable: whole files where they fit, else whole hunks with their file's
header repeated, and only a hunk larger than the budget is cut between lines.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lanes.kernel.errors import JobError
from lanes.router.classifier import estimate_tokens

FILE_START = "diff --git "
HUNK_START = "@@"
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}
MAX_CHANGE_BYTES = 16 * 1024 * 1024
"""Largest change one review reads (a diff, git's output, or all the files under review
together): a larger one is refused with the limit named, never cut."""


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


# --- reading: one regular file, stdin ------------------------------------------------------


def mib(size_bytes: int) -> str:
    """``size_bytes`` in MiB (in bytes below one)."""
    if size_bytes < 1024 * 1024:
        return f"{size_bytes} bytes"
    return f"{size_bytes / (1024 * 1024):g} MiB"


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, in words."""
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def too_large(what: str, limit_bytes: int) -> JobError:
    return JobError(
        f"{what} holds more than {mib(limit_bytes)}, the most one review reads: review a"
        " smaller change (fewer paths, a narrower range)"
    )


def bounded(handle: IO[bytes], what: str, limit_bytes: int) -> bytes:
    """At most ``limit_bytes`` of ``handle``; the error naming the limit if there is more."""
    data = handle.read(limit_bytes + 1)
    if len(data) > limit_bytes:
        raise too_large(what, limit_bytes)
    return data


def open_regular(path: Path, *, follow: bool = True) -> int | str:
    """A descriptor open on the regular file ``path``, or why not (``is a FIFO, not a regular
    file``; ``cannot be read: ...``). Opened without blocking (a FIFO with no writer is
    refused, not waited on), never through a final symbolic link unless ``follow``, and
    checked again once open."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
    flags |= 0 if follow else getattr(os, "O_NOFOLLOW", 0)
    try:
        mode = os.stat(path, follow_symlinks=follow).st_mode
        if not stat.S_ISREG(mode):
            return f"is {_kind(mode)}, not a regular file"
        fd = os.open(path, flags)
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):  # replaced between the check and the open
        os.close(fd)
        return f"is {_kind(mode)}, not a regular file"
    return fd


def _refused(what: str, path: Path, why: str) -> JobError:
    fix = ": give a regular file" if why.startswith("is ") else ""
    return JobError(f"{what} {path} {why}{fix}".lstrip())


def read_regular(path: Path, what: str, limit_bytes: int, *, follow: bool = True) -> bytes:
    """The bytes of the regular file ``path``; a :class:`JobError` naming it if it is anything
    else (a device, a FIFO, a socket, a directory), cannot be read or holds more than
    ``limit_bytes``."""
    opened = open_regular(path, follow=follow)
    if isinstance(opened, str):
        raise _refused(what, path, opened)
    with os.fdopen(opened, "rb") as handle:
        try:
            return bounded(handle, f"{what} {path}", limit_bytes)
        except OSError as exc:
            raise JobError(f"cannot read {what} {path}: {exc.strerror}") from None


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JobError(f"{what} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def read_diff(path: Path, limit_bytes: int = MAX_CHANGE_BYTES) -> str:
    """The diff in ``path`` (``-``: stdin), UTF-8, at most ``limit_bytes``."""
    if str(path) == "-":
        try:
            data = bounded(sys.stdin.buffer, "the diff on stdin", limit_bytes)
        except OSError as exc:
            raise JobError(f"cannot read the diff on stdin: {exc.strerror}") from None
        return _utf8(data, "the diff on stdin")
    return _utf8(read_regular(path, "diff file", limit_bytes), f"diff file {path}")


# --- reading: files and directories as a new-file diff -------------------------------------


@dataclass
class FilesRead:
    """Files as one new-file diff, and what was left out on purpose (``path (why)``)."""

    diff: str = ""
    skipped: list[str] = field(default_factory=list)
    size_bytes: int = 0
    seen: set[tuple[int, int]] = field(default_factory=set, repr=False)
    """(device, inode) of every file read: a file named twice is read once."""


def files_as_diff(paths: Iterable[Path], limit_bytes: int = MAX_CHANGE_BYTES) -> str:
    """Files (directories: their text files, recursively) as one new-file diff, so that a
    review of files reads like a review of a change (see :func:`read_files`)."""
    return read_files(paths, limit_bytes).diff


def read_files(paths: Iterable[Path], limit_bytes: int = MAX_CHANGE_BYTES) -> FilesRead:
    """The given files and the regular text files under the given directories as one new-file
    diff. A PATH that is a symbolic link is refused (give what it points to); inside a
    directory, symbolic links, devices, FIFOs, sockets and unreadable entries are skipped and
    listed, binary files (not UTF-8, or holding a NUL byte) left out. The files together may
    hold at most ``limit_bytes``."""
    read = FilesRead()
    parts: list[str] = []
    for path in paths:
        _check_argument(path)
        if path.is_dir():
            for entry, why in _tree(path):
                if why:
                    read.skipped.append(f"{_shown(entry)} ({why})")
                else:
                    parts.extend(_one_file(read, entry, limit_bytes, inside=True))
        else:
            parts.extend(_one_file(read, path, limit_bytes, inside=False))
    if not parts:
        raise JobError("no readable text file in the given paths")
    read.diff = "".join(parts)
    return read


def _check_argument(path: Path) -> None:
    """A PATH argument exists and does not go through a symbolic link: neither the path
    itself nor, for a relative path, any directory on the way to it (what a link points to
    may be anywhere)."""
    try:
        os.lstat(path)
    except OSError:
        raise JobError(f"{path} does not exist") from None
    steps = [Path(*path.parts[:n]) for n in range(1, len(path.parts) + 1)]
    for step in steps if not path.is_absolute() else [path]:
        if step.is_symlink():
            raise JobError(
                f"{step} is a symbolic link (to {_target(step)}); lanes review reads no link,"
                " so that nothing outside the given paths is sent: give what it points to, if"
                " that is what you mean to send"
            )


def _target(link: Path) -> str:
    try:
        return _shown(Path(os.readlink(link)))
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def _tree(directory: Path) -> Iterator[tuple[Path, str]]:
    """Every entry under ``directory`` (depth first, by name; SKIP_DIRS left out) without
    following a link: ``(path, "")`` for a regular file, ``(path, why)`` for one skipped."""
    pending = [directory]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            yield current, f"cannot list: {exc.strerror}"
            continue
        below = []
        for entry in entries:
            path = Path(entry.path)
            if entry.is_symlink():
                yield path, "symbolic link"
            elif entry.is_dir(follow_symlinks=False):
                if entry.name not in SKIP_DIRS:
                    below.append(path)
            elif entry.is_file(follow_symlinks=False):
                yield path, ""
            else:
                yield path, _special(entry)
        pending.extend(reversed(below))


def _special(entry: os.DirEntry[str]) -> str:
    try:
        return f"is {_kind(entry.stat(follow_symlinks=False).st_mode)}, not a regular file"
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"


def _one_file(read: FilesRead, path: Path, limit_bytes: int, *, inside: bool) -> list[str]:
    """``path`` as a new-file diff part; [] for a binary file or one already read, and, inside
    a directory, for one that cannot be read (listed in ``read.skipped``)."""
    opened = open_regular(path, follow=not inside)
    if isinstance(opened, str):
        if not inside:
            raise _refused("", path, opened)
        read.skipped.append(f"{_shown(path)} ({opened})")
        return []
    with os.fdopen(opened, "rb") as handle:
        info = os.fstat(opened)
        if (info.st_dev, info.st_ino) in read.seen:
            return []
        read.seen.add((info.st_dev, info.st_ino))
        try:
            data = handle.read(limit_bytes - read.size_bytes + 1)
        except OSError as exc:
            raise JobError(f"cannot read {path}: {exc.strerror}") from None
    read.size_bytes += len(data)
    if read.size_bytes > limit_bytes:
        raise too_large("the files to review", limit_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []  # binary: nothing a reviewer can read
    return [] if "\0" in text else [_new_file(path, text)]


def _shown(path: Path) -> str:
    """``path`` as text that survives UTF-8 and cannot break a diff header: undecodable
    bytes and control characters escaped."""
    name = os.fsencode(path).decode("utf-8", "backslashreplace")
    return json.dumps(name, ensure_ascii=False)[1:-1] if not name.isprintable() else name


def _new_file(path: Path, text: str) -> str:
    lines = text.splitlines()
    body = "".join(f"+{line}\n" for line in lines)
    name = _shown(Path(path.as_posix()))
    return (
        f"diff --git a/{name} b/{name}\nnew file mode 100644\n--- /dev/null\n+++ b/{name}\n"
        f"@@ -0,0 +1,{len(lines)} @@\n{body}"
    )
