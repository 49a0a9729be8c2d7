"""What ``lanes up`` does for its workers, on real processes and the test Redis: a worker that
is alive but has stopped taking messages is found by the liveness canary and restarted."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import redis

from broker.keys import Keys
from broker.liveness import liveness, server_time_s
from kernel.config import Config
from lanes.stack import Stack

from ..conftest import write_config

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
        assert stack.restart_stuck(client) == []  # a fresh worker is not judged yet
        stuck = stack.workers[0]
        os.kill(stuck.pid, signal.SIGSTOP)  # alive, connected, taking nothing
        try:
            client.hset(keys.canary(LANE), "sent", repr(server_time_s(client) - 60))
            stack.started_at[LANE] -= 60  # as if it had run past its grace
            assert liveness(client, keys, [LANE], 2)[LANE].consuming is False
            assert stack.restart_stuck(client) == [LANE]
        finally:
            if stuck.poll() is None:
                os.kill(stuck.pid, signal.SIGCONT)
        assert stuck.poll() is not None  # the stuck worker is gone
        fresh = stack.workers[0]
        assert fresh.pid != stuck.pid and fresh.poll() is None
        assert stack.restart_stuck(client) == []  # within its grace: not judged again
        # The replacement takes a canary of its own: the lane is consumed again.
        assert _wait(lambda: liveness(client, keys, [LANE], 2)[LANE].consuming, 30)
    client.close()
    assert any(f"worker for {LANE}: not consuming" in line for line in lines)
