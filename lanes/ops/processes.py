"""Child processes that die with their parent: workers started by ``lanes up`` / ``lanes demo``."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1
# Loaded here, not in the child: between fork and exec the child may only make plain calls.
_LIBC = ctypes.CDLL("libc.so.6", use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    # The kernel sends SIGTERM to the child when the parent dies, even by kill -9, so an
    # interrupted demo never leaves workers behind.
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner can read (logs may hold job details)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def spawn(
    args: Sequence[str], *, env: Mapping[str, str], log_file: Path
) -> subprocess.Popen[bytes]:
    """Start ``args`` with output to ``log_file``; the child is stopped if we die.

    Sharp edge: Linux ties "dies with its parent" to the *thread* that spawned the child, so
    call this from a thread that lives as long as the child should (the main thread).
    """
    private_dir(log_file.parent)
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as log:
        return subprocess.Popen(
            list(args),
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )


def stop_all(procs: Sequence[subprocess.Popen[bytes]], timeout_s: float = 10.0) -> None:
    """SIGTERM every process, wait, then SIGKILL what is left."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env
