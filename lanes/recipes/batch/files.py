"""A batch's two files: IN read a line at a time, OUT appended and locked; and the ids that
tie a line of one to a line of the other.

Both must be regular files: IN is read twice (a FIFO or a device would not give the same
lines again, or would never end), and OUT is the record a rerun resumes from (a device, a
pipe or a file behind a symlink is no such record). Every line is read bounded: a longer one
is a bad line of IN, or not a result line of OUT.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lanes.kernel.errors import JobError
from lanes.kernel.files import (
    MAX_INPUT_BYTES,
    bounded_lines,
    file_kind,
    json_limit_text,
    not_regular,
    open_regular,
)
from lanes.router.job import lone_surrogate

OUT_WHY = "OUT must be a regular file: it is the record a rerun resumes from"


# -- ids ----------------------------------------------------------------------------------------
def _digest_text(value: Any) -> bytes:
    # surrogatepass: what cannot be encoded still gets a digest (the line is refused later,
    # with its number, rather than ending the batch here).
    return json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


def id_key(line_id: str | int) -> bytes:
    """A fixed-size stand-in for an id (ids are arbitrary text): 1 and "1" stay distinct."""
    return hashlib.blake2b(_digest_text(line_id), digest_size=16).digest()


def valid_id(value: object) -> str | int | None:
    """The id if it is one (a non-empty string or an integer), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value):
        return value
    return None


def shown(line_id: str | int) -> str:
    """An id as a message quotes it: JSON, cut to 60 characters."""
    text = json.dumps(line_id, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def batch_prefix(out_path: Path) -> str:
    """The start of every job id a batch into ``out_path`` submits."""
    return f"batch-{hashlib.sha256(str(out_path.resolve()).encode()).hexdigest()[:12]}-"


def batch_job_id(
    out_path: Path, line_id: str | int, job: dict[str, Any], strategy: str | None
) -> str:
    """The job id of a line: the same OUT, id, job and strategy give the same id (a resumed
    run re-attaches to the job); an edited line gets a new one."""
    what = _digest_text([line_id, job, strategy])
    return batch_prefix(out_path) + hashlib.sha256(what).hexdigest()[:32]


# -- IN -----------------------------------------------------------------------------------------
def check_in(path: Path) -> None:
    """A :class:`JobError` unless ``path`` is a regular file (or a link to one)."""
    try:
        kind = file_kind(path.stat().st_mode)
    except FileNotFoundError:
        raise JobError(f"cannot read input file {path}: no such file") from None
    except OSError as exc:
        raise JobError(f"cannot read input file {path}: {exc.strerror}") from None
    if kind is not None:
        raise not_regular(path, "input file", kind)


def in_lines(path: Path, limit: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line) of every non-blank line of IN; None for a line over ``limit``
    bytes (skipped unread)."""
    with open_regular(path, "input file") as file:
        lines = enumerate(bounded_lines(file, limit), 1)
        while True:
            try:
                lineno, line = next(lines)
            except StopIteration:
                return
            except OSError as exc:
                raise JobError(f"cannot read input file {path}: {exc.strerror}") from None
            if line.data is None or line.data.strip():
                yield lineno, line.data


def decoded(raw: bytes, first: bool) -> str:
    """A line as text; a UTF-8 byte-order mark on the first line is dropped."""
    return raw.decode("utf-8-sig" if first else "utf-8").strip()


def parse_line(text: str) -> tuple[str | int, dict[str, Any]]:
    """(id, the other fields) of one line; ValueError saying what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} (column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not JSON lanes can read: {json_limit_text(exc)}") from None
    if not isinstance(data, dict):
        raise ValueError(f"not a JSON object but {type(data).__name__}")
    if "id" not in data:
        raise ValueError('no "id"')
    line_id = valid_id(data.pop("id"))
    if line_id is None:
        raise ValueError('"id" must be a non-empty string or an integer')
    if isinstance(line_id, str) and (at := lone_surrogate(line_id)) is not None:
        raise ValueError(
            f'"id" holds text that cannot be encoded as UTF-8 (a lone surrogate at character'
            f" {at}); write UTF-8 text"
        )
    return line_id, data


def line_id_of(raw: bytes | None, first: bool = False) -> str | int | None:
    """The id of a line, None if it has none (or is not a line of JSON, or is too long)."""
    if raw is None:
        return None
    try:
        return parse_line(decoded(raw, first))[0]
    except (ValueError, UnicodeDecodeError):
        return None


def count_lines(path: Path, done: set[bytes], limit: int) -> tuple[int, int]:
    """(non-blank lines, lines whose id is in ``done``): the first pass, for the totals."""
    lines = already = 0
    for lineno, raw in in_lines(path, limit):
        lines += 1
        if done:
            line_id = line_id_of(raw, lineno == 1)
            already += line_id is not None and id_key(line_id) in done
    return lines, already


# -- OUT ----------------------------------------------------------------------------------------
def check_out(out_path: Path, in_path: Path) -> None:
    """A :class:`JobError` unless ``out_path`` can be OUT: a regular file or none yet, not a
    symlink, not IN itself, in a directory that exists."""
    if not out_path.parent.is_dir():
        raise JobError(f"cannot write output file {out_path}: no directory {out_path.parent}")
    if not os.path.lexists(out_path):
        return
    try:
        kind = file_kind(out_path.stat().st_mode)
    except OSError:
        kind = None  # a dangling symlink: said below
    if kind is not None:
        raise JobError(f"cannot write output file {out_path}: it is {kind}; {OUT_WHY}")
    if out_path.is_symlink():
        raise JobError(
            f"output file {out_path} is a symlink (to {os.readlink(out_path)}); name the file"
            f" itself: {OUT_WHY}, and a batch writes only the file it is given"
        )
    if in_path.exists() and os.path.samefile(out_path, in_path):
        raise JobError(f"the output file {out_path} is the input file; name another one")


class Output:
    """OUT, open for appending and locked against a second batch writing it at once.

    Each line goes out in one ``write`` of the whole line, under a lock; what is written is
    in the kernel's hands, so a killed process loses none of it (``fsync`` at close guards
    against a crash of the machine). Once closed, late results are dropped, not written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = _open_out(path)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            raise JobError(
                f"output file {path} is being written by another batch; wait for it to end"
            ) from None
        self._lock = threading.Lock()
        self._closed = False

    def done_ids(self, problem: Callable[[str], None]) -> tuple[set[bytes], bool]:
        """The ids already in OUT, and whether a partial last line (a killed run's) was cut
        off. A last line that is whole but for its newline is kept and given one."""
        done: set[bytes] = set()
        end = 0
        with os.fdopen(os.dup(self._fd), "rb") as file:  # from the start: writes append
            for lineno, line in enumerate(bounded_lines(file, MAX_INPUT_BYTES), 1):
                if not line.ended:
                    return done, self._last_line(line.data, end, done, problem)
                end += line.size
                if line.data is None or line.data.strip():
                    self._note(line.data, lineno, done, problem)
        return done, False

    def _last_line(
        self, raw: bytes | None, end: int, done: set[bytes], problem: Callable[[str], None]
    ) -> bool:
        """Keep a whole last line (give it its newline); cut a partial one off (True)."""
        line_id = line_id_of(raw)
        if line_id is not None:
            os.write(self._fd, b"\n")
            done.add(id_key(line_id))
            return False
        os.ftruncate(self._fd, end)
        problem(
            "OUT ended in a partial line (a run was interrupted): dropped it; its id runs again"
        )
        return True

    @staticmethod
    def _note(
        raw: bytes | None, lineno: int, done: set[bytes], problem: Callable[[str], None]
    ) -> None:
        line_id = line_id_of(raw)
        if line_id is None:
            problem(f"OUT line {lineno} is not a result line; ignored")
            return
        done.add(id_key(line_id))

    def append(self, line: dict[str, Any]) -> bool:
        """Write one line; False (nothing written) once the output is closed."""
        data = _line_bytes(line)
        with self._lock:
            if self._closed:
                return False
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            return True

    def close(self) -> str | None:
        """Sync and close OUT (once); what went wrong syncing, None if nothing did."""
        with self._lock:
            if self._closed:
                return None
            self._closed = True
            try:
                os.fsync(self._fd)
            except OSError as exc:
                return f"cannot sync output file {self.path}: {exc.strerror}"
            finally:
                os.close(self._fd)
            return None


def _open_out(path: Path) -> int:
    """OUT's descriptor, for reading and appending; never through a symlink, never anything
    but a regular file (checked on the open file: the path may have changed since)."""
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if path.is_symlink():
            raise JobError(f"output file {path} is a symlink; name the file itself") from None
        raise JobError(f"cannot write output file {path}: {exc.strerror}") from None
    kind = file_kind(os.fstat(fd).st_mode)
    if kind is not None:
        os.close(fd)
        raise not_regular(path, "output file", kind, verb="write")
    os.set_blocking(fd, True)
    return fd


def _line_bytes(line: dict[str, Any]) -> bytes:
    """One OUT line. Text that cannot be encoded as UTF-8 (a provider's lone surrogate) is
    written as JSON escapes rather than lose the line."""
    try:
        return (json.dumps(line, ensure_ascii=False) + "\n").encode()
    except UnicodeEncodeError:
        return (json.dumps(line) + "\n").encode()
