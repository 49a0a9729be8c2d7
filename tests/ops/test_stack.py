"""What ``lanes up`` does, on real processes and the test Redis: a worker that is alive but
has stopped taking messages is found by the liveness canary and restarted; it says where
everything is once; a second ``lanes up`` on a running deployment is refused."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from lanes.broker.app import create_app
from lanes.kernel.config import Config
from lanes.kernel.errors import InfrastructureError
from lanes.ops.stack import Stack
from lanes.ops.stack_lock import hold
from lanes.stores.keys import Keys
from lanes.workers.services.liveness import liveness, server_time_s

from ..conftest import default_sigint, write_config

LANE = "koala"


def _wait(check: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_a_worker_that_stopped_consuming_is_restarted(
    example_config: Config, isolated_redis_url: str, tmp_path: Path
) -> None:
    config, path = write_config(
        example_config, tmp_path, redis_url=isolated_redis_url, state_dir=str(tmp_path / "state"),
        redis_prefix=f"lanes-stack-{uuid.uuid4().hex[:6]}", simulator={"mode": "always", "port": 0},
        liveness={"interval_s": 1, "timeout_s": 2},
    )  # fmt: skip
    keys = Keys(config.redis_prefix)
    client = redis.Redis.from_url(isolated_redis_url)
    lines: list[str] = []
    with Stack(config, path, lanes=[LANE], log=lines.append) as stack:
        stack.wait_ready()
        assert _wait(lambda: liveness(client, keys, [LANE], 2)[LANE].consuming, 20)
        assert stack.restart_stuck() == []  # a fresh worker is not judged yet
        stuck = stack.workers[0]
        os.kill(stuck.pid, signal.SIGSTOP)  # alive, connected, taking nothing
        try:
            client.hset(keys.canary(LANE), "sent", repr(server_time_s(client) - 60))
            stack.started_at[LANE] -= 60  # as if it had run past its grace
            assert liveness(client, keys, [LANE], 2)[LANE].consuming is False
            assert stack.restart_stuck() == [LANE]
        finally:
            if stuck.poll() is None:
                os.kill(stuck.pid, signal.SIGCONT)
        assert stuck.poll() is not None  # the stuck worker is gone
        fresh = stack.workers[0]
        assert fresh.pid != stuck.pid and fresh.poll() is None
        assert stack.restart_stuck() == []  # within its grace: not judged again
        # The replacement takes a canary of its own: the lane is consumed again.
        assert _wait(lambda: liveness(client, keys, [LANE], 2)[LANE].consuming, 30)
    client.close()
    assert any(f"worker for {LANE}: not consuming" in line for line in lines)


def _lines_until(proc: subprocess.Popen[str], start: str, timeout_s: float = 120) -> list[str]:
    """``proc``'s output lines up to and including the first that starts with ``start``."""
    assert proc.stdout is not None
    deadline, lines = time.monotonic() + timeout_s, []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith(start):
            return lines
        assert time.monotonic() < deadline, lines
    raise AssertionError(f"exited with {proc.wait()} before {start!r}: {lines}")


def _up(path: Path) -> list[str]:
    return [sys.executable, "-m", "lanes", "--config", str(path), "up", LANE]


def test_up_says_where_everything_is_once_and_a_second_up_is_refused(
    example_config: Config, isolated_redis_url: str, tmp_path: Path
) -> None:
    config, path = write_config(
        example_config, tmp_path, redis_url=isolated_redis_url, state_dir=str(tmp_path / "state"),
        redis_prefix=f"lanes-up-{uuid.uuid4().hex[:6]}", simulator={"mode": "always", "port": 0},
        flower={"port": 0}, metrics={"port": 0},
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    first = subprocess.Popen(
        _up(path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=default_sigint,
    )  # fmt: skip
    try:
        lines = _lines_until(first, "logs: ")
        for start in ("simulator: ", "flower: ", "metrics: ", "logs: "):
            assert sum(line.startswith(start) for line in lines) == 1, (start, lines)
        again = subprocess.run(_up(path), env=env, capture_output=True, text=True, timeout=60)
        said = " ".join(again.stderr.split())
        assert again.returncode == 5, again.stdout + again.stderr
        assert f"pid {first.pid}" in said and LANE in said and "Ctrl-C" in said, said
        # Another state directory, same Redis and prefix: its workers would take the same names.
        elsewhere = {**env, "LANES_STATE_DIR": str(tmp_path / "elsewhere")}
        other = subprocess.run(_up(path), env=elsewhere, capture_output=True, text=True, timeout=60)
        said = " ".join(other.stderr.split())
        assert other.returncode == 5, other.stdout + other.stderr
        assert f"lanes-{LANE}@{socket.gethostname()}" in said, said
        app = create_app(config, isolated_redis_url)
        try:
            replies = app.control.ping(timeout=1.0) or []
        finally:
            app.close()
        assert [name for reply in replies for name in reply] == [
            f"lanes-{LANE}@{socket.gethostname()}"
        ]
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=60) in (0, 130)
    finally:
        if first.poll() is None:
            first.kill()


def test_a_state_directory_in_use_is_refused_saying_who_holds_it(tmp_path: Path) -> None:
    lock = hold(tmp_path)
    lock.record([LANE], "redis://127.0.0.1:6379/0")
    with pytest.raises(InfrastructureError) as refused:
        hold(tmp_path)
    said = str(refused.value)
    assert f"pid {os.getpid()}" in said and LANE in said and "redis://127.0.0.1:6379/0" in said
    assert f"kill {os.getpid()}" in said and "Ctrl-C" in said
    lock.release()
    hold(tmp_path).release()  # free again once released (or once its process ends)
