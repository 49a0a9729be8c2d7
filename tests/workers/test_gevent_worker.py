"""A lane whose own workers run a gevent pool: many calls held at once in one process, every
job answered once (a real worker process, real Redis, the simulator with latency)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import redis

from lanes.broker.app import create_app, wait_for_queues
from lanes.client import Lanes
from lanes.kernel.config import Config
from lanes.ops.processes import child_env, spawn, stop_all
from lanes.ops.stack import lane_worker, sim_profiles, worker_command
from lanes.sim import Simulator
from lanes.workers.providers import connections_for

from ..conftest import write_config

LANE = "claude1"


def test_a_lanes_own_worker_spec_picks_its_pool(example_config: Config) -> None:
    own = example_config.worker.model_copy(update={"pool": "gevent", "concurrency": 3000})
    lane = example_config.instances[LANE].model_copy(update={"worker": own})
    config = example_config.model_copy(
        update={"instances": {**example_config.instances, LANE: lane}}
    )
    command = worker_command(config, [LANE], "w", None)
    assert command[command.index("-P") + 1] == "gevent"
    assert command[command.index("-c") + 1] == "3000"
    assert lane_worker(config, [LANE, "zai"]) == config.worker  # several lanes: the default
    assert connections_for(config, LANE) == 3000 and connections_for(config, "zai") == 64
    assert config.most_concurrency() == 3000


def test_a_gevent_worker_holds_many_calls_at_once(
    redis_url: str, example_config: Config, tmp_path: Path
) -> None:
    sim = Simulator(port=0).start()
    prefix = f"lanes-gevent-{uuid.uuid4().hex[:8]}"
    config, path = write_config(
        example_config, tmp_path, redis_url=redis_url, redis_prefix=prefix,
        state_dir=str(tmp_path / "state"), cache={"enabled": False}, ledger={"enabled": False},
        simulator={"mode": "always", "port": sim.port, "latency_s": 2.0,
                   "latency_jitter_s": 0.0, "enforce_limits": False},
    )  # fmt: skip
    instances = config.model_dump(mode="json")["instances"]
    instances[LANE]["worker"] = {"pool": "gevent", "concurrency": 150}
    config, path = write_config(config, tmp_path, instances=instances)
    for name, profile in sim_profiles(config).items():
        sim.set_profile(name, profile)
    env = child_env({"LANES_CONFIG": str(path), "REDIS_URL": redis_url})
    worker = spawn(worker_command(config, [LANE], f"gevent-{prefix}", None), env=env,
                   log_file=tmp_path / "worker.log")  # fmt: skip
    try:
        app = create_app(config, redis_url)
        wait_for_queues(app, {LANE}, timeout_s=60)
        app.close()
        with Lanes(config, redis_url) as lanes:
            started = time.monotonic()
            handles = [lanes.submit({"prompt": f"item {i}", "instance": LANE, "max_tokens": 20,
                                     "model": "claude-haiku-4-5"}) for i in range(120)]  # fmt: skip
            results = [h.get(timeout_s=60) for h in handles]
            elapsed_s = time.monotonic() - started
        assert all(r.ok for r in results) and len({r.job_id for r in results}) == 120
        # 120 two-second calls: held together they take a few seconds, one by one four minutes.
        assert elapsed_s < 30, f"{elapsed_s:.1f}s: the calls did not run side by side"
        assert sim.stats()[LANE]["ok"] == 120
    finally:
        stop_all([worker])
        sim.stop()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"{prefix}:*", count=1000):
            client.delete(key)


@pytest.mark.parametrize("concurrency", [10_001])
def test_worker_concurrency_has_a_ceiling(example_config: Config, concurrency: int) -> None:
    with pytest.raises(ValueError, match="10000"):
        example_config.worker.model_validate({"concurrency": concurrency})
