"""Logs of the processes lanes starts are private to their owner."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

from lanes.ops.processes import child_env, spawn


def test_processes_logs_and_their_directory_are_private(tmp_path: Path) -> None:
    log_file = tmp_path / "state" / "logs" / "worker.log"
    proc = spawn([sys.executable, "-c", "print('hello')"], env=child_env({}), log_file=log_file)
    assert proc.wait(timeout=30) == 0
    assert log_file.read_text().strip() == "hello"
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(log_file.parent.stat().st_mode) == 0o700
