"""One local stack per state directory: what a second ``lanes up`` (or ``lanes demo``) finds.

A running :class:`lanes.ops.stack.Stack` holds an exclusive ``flock`` on
``<state_dir>/stack.lock`` and writes there who it is (pid, lanes, Redis, start time). The
kernel drops the lock when the process ends, however it ends (even ``kill -9``), so a stale file
never blocks anyone; the file itself stays, and only the lock says whether it is in force.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path

from lanes.kernel.errors import InfrastructureError
from lanes.ops.processes import private_dir

LOCK_FILE = "stack.lock"


class StackLock:
    """The held lock; :meth:`release` (or the end of the process) gives it back."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    def record(self, lanes: list[str], redis_url: str) -> None:
        """Say who holds the lock, for whoever finds it taken (no secret: the URL is masked
        by the caller)."""
        info = {"pid": os.getpid(), "lanes": lanes, "redis": redis_url, "since": time.time()}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(info).encode(), 0)

    def release(self) -> None:
        os.close(self._fd)  # closing the descriptor drops the flock


def hold(state_dir: Path) -> StackLock:
    """Take ``state_dir``'s stack lock, or raise InfrastructureError saying what holds it and
    how to stop it."""
    path = private_dir(state_dir) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise InfrastructureError(_held_by(path)) from None
    return StackLock(path, fd)


def _held_by(path: Path) -> str:
    info: dict[str, object] = {}
    with contextlib.suppress(OSError, ValueError):
        info = json.loads(path.read_text(encoding="utf-8"))
    pid = info.get("pid", "unknown")
    lanes = info.get("lanes")
    names = ", ".join(str(lane) for lane in lanes) if isinstance(lanes, list) else "starting"
    since = info.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(
        since, int | float) else "a moment ago"  # fmt: skip
    return (
        f"lanes is already running from {path.parent} (pid {pid}, since {when}: lanes "
        f"{names} on {info.get('redis', 'Redis')})."
        f" Use it (`lanes run`, `lanes status` with REDIS_URL set as it printed), or stop it"
        f" first: Ctrl-C in its terminal, or `kill {pid}`"
    )
