"""Interactive jobs overtake a batch backlog on the same lane: real Redis, a real worker.

Batch jobs wait in their lane's priority-9 list, interactive ones in the lane's own
list, which a worker reads first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from lanes.broker.app import create_app, wait_for_queues
from lanes.client import Lanes
from lanes.kernel.config import Config
from lanes.ops.processes import child_env, spawn, stop_all
from lanes.ops.stack import sim_profiles, worker_command
from lanes.ops.status import lane_status
from lanes.sim import Simulator
from lanes.stores.keys import Keys
from tests.conftest import write_config

LANE = "zai"


@pytest.fixture(scope="module")
def setup(
    redis_url: str, example_config: Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Config, Path, Simulator]]:
    tmp = tmp_path_factory.mktemp("priority")
    sim = Simulator(port=0, profiles=sim_profiles(example_config)).start()
    prefix = f"lanes-test-{uuid.uuid4().hex[:8]}"
    config, path = write_config(
        example_config, tmp, redis_url=redis_url, redis_prefix=prefix,
        state_dir=str(tmp / "state"), cache={"enabled": False},
        simulator={"mode": "always", "port": sim.port, "latency_s": 0.05,
                   "latency_jitter_s": 0.0},
    )  # fmt: skip
    try:
        yield config, path, sim
    finally:
        sim.stop()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"{prefix}:*", count=1000):
            client.delete(key)


def test_an_interactive_job_overtakes_the_batch_waiting_on_its_lane(
    setup: tuple[Config, Path, Simulator], redis_url: str
) -> None:
    config, path, _sim = setup
    keys = Keys(config.redis_prefix)
    with Lanes(config, redis_url) as lanes:
        batch = [
            lanes.submit({"prompt": f"summarise note {i}", "instance": LANE, "vital": False,
                          "priority": "batch", "max_tokens": 32})
            for i in range(6)
        ]  # fmt: skip
        urgent = lanes.submit({"prompt": "summarise the urgent note", "instance": LANE,
                               "vital": False, "max_tokens": 32})  # fmt: skip
        interactive_list, batch_list = keys.queue_lists(LANE)
        assert (lanes.redis.llen(interactive_list), lanes.redis.llen(batch_list)) == (1, 6)
        row = next(r for r in lane_status(lanes.deployment) if r["lane"] == LANE)
        assert row["queue_depth"] == 7 and row["backlog"] == 7
        worker = spawn(worker_command(config, [LANE], f"prio-{uuid.uuid4().hex[:6]}", 1),
                       env=child_env({"LANES_CONFIG": str(path), "REDIS_URL": redis_url}),
                       log_file=path.parent / "worker.log")  # fmt: skip
        try:
            app = create_app(config, redis_url)
            wait_for_queues(app, {LANE}, timeout_s=60)
            app.close()
            first = urgent.get(timeout_s=60)
            rest = [handle.get(timeout_s=60) for handle in batch]
        finally:
            stop_all([worker])
    assert first.ok and all(result.ok for result in rest)
    assert first.finished_at < min(result.finished_at for result in rest)
