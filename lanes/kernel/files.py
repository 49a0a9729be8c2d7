"""The files a user names on the command line or to a batch, read safely.

A file argument must be a regular file (after symlinks): a FIFO with no writer would block
the command forever, ``/dev/zero`` would fill memory, ``/dev/stdout`` would read the
command's own output. Stdin (``-``) is read where a command says so. Every read is bounded:
a whole file by :data:`MAX_INPUT_BYTES`, a line of a JSONL file by a limit per line (a
longer line is reported, its bytes skipped, never held).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from lanes.kernel.errors import JobError

MAX_INPUT_BYTES = 32 * 1024 * 1024
"""The most read from one file argument or one line of a JSONL file: eight times the
default ``max_job_bytes`` (4 MiB), room for a job's text with JSON's escapes."""
_SKIP_CHUNK = 1024 * 1024

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def file_kind(mode: int) -> str | None:
    """What a file of ``mode`` is when it is not a regular file; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def not_regular(path: Path, what: str, kind: str, verb: str = "read") -> JobError:
    return JobError(f"cannot {verb} {what} {path}: it is {kind}; give a regular file")


def open_regular(path: Path, what: str) -> BinaryIO:
    """``path`` open for reading if it is a regular file; a :class:`JobError` naming ``what``
    otherwise. Checked before opening (opening a device can do things) and again on the
    open file (the path may have changed in between); opened without blocking, as a FIFO
    with no writer would block ``open`` itself."""
    try:
        kind = file_kind(os.stat(path).st_mode)
        if kind is not None:
            raise not_regular(path, what, kind)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise JobError(f"cannot read {what} {path}: {exc.strerror}") from None
    kind = file_kind(os.fstat(fd).st_mode)
    if kind is not None:
        os.close(fd)
        raise not_regular(path, what, kind)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_bounded(file: BinaryIO, limit: int) -> bytes | None:
    """All of ``file``, or None when it holds more than ``limit`` bytes."""
    data = file.read(limit + 1)
    return None if len(data) > limit else data


class RawLine(NamedTuple):
    """One line of a file: ``data`` with its newline (None when longer than the limit: its
    bytes were skipped), ``size`` its bytes in the file, ``ended`` whether a newline ends
    it (not the case of a last line cut short)."""

    data: bytes | None
    size: int
    ended: bool


def bounded_lines(file: BinaryIO, limit: int) -> Iterator[RawLine]:
    """The lines of ``file``, none held longer than ``limit`` bytes (newline not counted)."""
    while True:
        data = file.readline(limit + 1)
        if not data:
            return
        ended = data.endswith(b"\n")
        if ended or len(data) <= limit:
            yield RawLine(data, len(data), ended)
            continue
        size, ended = len(data), False
        while not ended:
            chunk = file.readline(_SKIP_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            ended = chunk.endswith(b"\n")
        yield RawLine(None, size, ended)


def json_limit_text(exc: ValueError | RecursionError) -> str:
    """What :func:`json.loads` could not take, beyond syntax (a ``JSONDecodeError`` says its
    own): nesting deeper than Python recurses, an integer of more digits than it converts."""
    if isinstance(exc, RecursionError):
        return "arrays or objects nested too deeply"
    return str(exc).split(";")[0].lower()


def size_text(limit: int) -> str:
    """``limit`` bytes as a person reads them: ``32 MiB``, ``1000 bytes``."""
    if limit >= 1024 * 1024 and limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MiB"
    return f"{limit} bytes"
