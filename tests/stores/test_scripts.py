"""Scripts queued on pipelines: one round trip, and loaded again when Redis forgot them."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import redis

from lanes.broker.embedded import EmbeddedRedis
from lanes.stores.keys import Keys
from lanes.stores.redis.lane_state import RedisLaneState
from lanes.stores.scripts import LIBRARIES, SCRIPT_NAMES, execute_with_scripts


@pytest.fixture
def client(tmp_path: Path) -> Iterator[redis.Redis]:
    server = EmbeddedRedis(tmp_path / "redis").start()  # its own server: SCRIPT FLUSH is global
    made = redis.Redis.from_url(server.url, decode_responses=True)
    yield made
    made.close()
    server.stop()


def _script_checks(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_script|exists", {}).get("calls", 0))


def test_a_pipeline_with_a_script_runs_on_a_redis_that_forgot_it(client: redis.Redis) -> None:
    state = RedisLaneState(client, Keys("scripts"))
    client.script_flush()

    def build(pipe: redis.client.Pipeline) -> None:
        pipe.incr("runs")
        state.record_success_in(pipe, "zai")

    replies = execute_with_scripts(client, build)
    assert float(replies[1]) > 0  # the health score the script returns
    assert client.get("runs") == "2"  # built and run again once the scripts were loaded
    assert state.status("zai").health == pytest.approx(float(replies[1]))


def test_a_pipeline_with_a_loaded_script_asks_nothing_more(client: redis.Redis) -> None:
    state = RedisLaneState(client, Keys("scripts"))
    execute_with_scripts(client, lambda pipe: state.record_success_in(pipe, "zai"))
    checks = _script_checks(client)
    execute_with_scripts(client, lambda pipe: state.record_success_in(pipe, "zai"))
    assert _script_checks(client) == checks
    assert int(client.get("runs") or 0) == 0


def test_every_script_is_reloaded_after_a_flush() -> None:
    shipped = {p.name.removesuffix(".lua") for p in resources.files("lanes.stores.lua").iterdir()
               if p.name.endswith(".lua")}  # fmt: skip
    assert set(SCRIPT_NAMES) == shipped - set(LIBRARIES.values())


def test_a_result_is_recorded_on_a_redis_that_never_ran_the_script(client: redis.Redis) -> None:
    """A first job that fails (nothing recorded a success before) on a new or restarted Redis."""
    from lanes.broker.result import Result
    from lanes.stores.redis.jobs import RedisJobStore

    client.script_flush()
    jobs = RedisJobStore(client, Keys("scripts"), ttl_s=60)
    failed = Result(job_id="first", status="failed", instance="zai", model="glm-4.6", step=0,
                    attempt=0, error="BadRequest")  # fmt: skip
    assert jobs.record(failed) == failed
    assert jobs.result("first") == failed
