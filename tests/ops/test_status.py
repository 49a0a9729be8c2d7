"""``lanes status`` with per-model limits: the rows, the table, the CLI, and agreement with the
limiter and the simulator on one config (real Redis, real HTTP)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
import redis
from rich.console import Console
from typer.testing import CliRunner

from lanes.cli.status import status_table
from lanes.deployment import Deployment, open_deployment
from lanes.entry import app as cli_app
from lanes.kernel.config import Config
from lanes.kernel.config.models import ALL_MODELS
from lanes.ops.stack import sim_profiles
from lanes.ops.status import TYPICAL_JOB_TOKENS, lane_status
from lanes.router.load import instance_rate
from lanes.sim import Simulator
from lanes.stores.keys import Keys
from lanes.stores.limiter import Acquired, Denied, Reason
from lanes.stores.redis.limiter import RedisLimiter

from ..conftest import write_config

HAIKU = "claude-haiku-4-5"
SONNET = "claude-sonnet-4-5"
GLM = "glm-4.6"
HAIKU_LIMITS = {"requests_per_min": 6, "input_tokens_per_min": 6000, "output_tokens_per_min": 600}
ROW_KEYS = {
    "lane", "enabled", "limits", "available_now", "cooldown_s", "disabled", "health",
    "queue_depth", "backlog", "drain_s", "workers", "consuming", "liveness",
}  # fmt: skip
LEASE_TTL_S = 60.0
PING: list[Any] = [{"role": "user", "content": "ping"}]


@pytest.fixture
def config(example_config: Config, keys: Keys) -> Config:
    """The example with per-model limits on claude1 (haiku) and zai (glm-4.6), no latency."""
    data = example_config.model_dump(mode="json")
    data["redis_prefix"] = keys.prefix
    data["simulator"].update(latency_s=0.0, latency_jitter_s=0.0, enforce_limits=True)
    data["instances"]["claude1"]["model_limits"] = {HAIKU: HAIKU_LIMITS}
    data["instances"]["zai"]["model_limits"] = {GLM: {"requests_per_min": 30}}
    return Config.model_validate(data)


@pytest.fixture
def deployment(config: Config, redis_url: str) -> Iterator[Deployment]:
    with open_deployment(config, redis_url) as opened:
        yield opened


def _rows(deployment: Deployment) -> dict[str, dict[str, Any]]:
    return {row["lane"]: row for row in lane_status(deployment)}


def _reserve(
    limiter: RedisLimiter, config: Config, lane: str, model: str, input_tokens: int = 100
) -> Acquired | Denied:
    """Reserve one call of ``model`` the way a worker does, with the kernel's class and limits
    (without the worker's ``limit_margin``, to compare with the simulator's buckets)."""
    model_class, limits = config.instances[lane].limits_for(model)
    return limiter.try_acquire(lane, model_class, limits, input_tokens, 10, LEASE_TTL_S)


def test_status_rows_keep_their_keys_and_list_per_model_limits(
    config: Config, redis_client: redis.Redis, deployment: Deployment
) -> None:
    rows = _rows(deployment)
    assert all(set(row) == ROW_KEYS | {"model_limits"} for row in rows.values())
    assert rows["claude2"]["model_limits"] == {}
    assert rows["claude1"]["limits"]["requests_per_min"] == 1000
    haiku = rows["claude1"]["model_limits"][HAIKU]
    assert haiku["limits"] == {**HAIKU_LIMITS, "concurrency": 0}
    assert haiku["available_now"]["requests"] == pytest.approx(6.0)
    assert rows["zai"]["model_limits"][GLM]["limits"]["requests_per_min"] == 30
    assert rows["zai"]["model_limits"][GLM]["available_now"]["input_tokens"] is None
    assert json.loads(json.dumps(list(rows.values()))) == list(rows.values())


def test_status_shows_each_lanes_backlog_and_the_time_to_drain_it(
    config: Config, redis_client: redis.Redis, keys: Keys, deployment: Deployment
) -> None:
    jobs = deployment.stores.jobs
    for i in range(6):
        jobs.track(f"job-{i}", f"fp-{i}", "koala", {"step": 0})
    rows = _rows(deployment)
    assert rows["koala"]["backlog"] == 6 and rows["zai"]["backlog"] == 0
    rate = instance_rate(config, config.instances["koala"], *TYPICAL_JOB_TOKENS)
    assert rows["koala"]["drain_s"] == round(6 / rate, 1) and rows["zai"]["drain_s"] == 0.0


def test_status_reads_each_model_class_from_the_buckets_the_limiter_charged(
    config: Config, keys: Keys, redis_client: redis.Redis, deployment: Deployment
) -> None:
    limiter = RedisLimiter(redis_client, keys)
    for model, input_tokens in ((HAIKU, 2500), (HAIKU, 2500), (SONNET, 400_000)):
        assert isinstance(_reserve(limiter, config, "claude1", model, input_tokens), Acquired)
    row = _rows(deployment)["claude1"]
    haiku_now, shared_now = row["model_limits"][HAIKU]["available_now"], row["available_now"]
    # Buckets refill at limit/60 per second while status runs (~1 s, waiting for workers):
    # these bounds hold for about 10 s, and fail if a call was charged to the wrong class.
    assert 4.0 <= haiku_now["requests"] < 5.0
    assert 1000.0 <= haiku_now["input_tokens"] < 2000.0
    assert 50_000.0 <= shared_now["input_tokens"] < 150_000.0
    assert haiku_now["leases_in_use"] == shared_now["leases_in_use"] == 3


def test_status_table_shows_a_line_per_model_with_its_own_limits(
    config: Config, redis_client: redis.Redis, deployment: Deployment
) -> None:
    console = Console(width=160, record=True, color_system=None)
    console.print(status_table(lane_status(deployment)))
    lines = console.export_text().splitlines()
    [claude1] = [line for line in lines if "claude1" in line]
    [haiku] = [line for line in lines if f"└ {HAIKU}" in line]
    assert "1000" in claude1 and "450k/90k" in claude1
    assert "6000/600" in haiku and " 6 " in haiku
    assert lines.index(haiku) == lines.index(claude1) + 1
    assert not any(f"└ {SONNET}" in line for line in lines)


def test_status_cli_json_carries_the_per_model_rows(
    config: Config, keys: Keys, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    _, path = write_config(config, tmp_path, redis_url=redis_url)
    result = CliRunner().invoke(cli_app, ["--config", str(path), "status", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["lane"]: row for row in json.loads(result.output)["lanes"]}
    assert rows["claude1"]["model_limits"][HAIKU]["limits"]["requests_per_min"] == 6
    assert rows["koala"]["model_limits"] == {}


def test_status_limiter_simulator_and_status_agree_on_every_model(
    config: Config, redis_client: redis.Redis, deployment: Deployment
) -> None:
    profiles = sim_profiles(config)
    rows = _rows(deployment)
    for lane, spec in config.instances.items():
        own = {}
        for model in spec.models:
            model_class, limits = spec.limits_for(model)
            sim_class, sim_limits = profiles[lane].limits_for(model)
            assert sim_class == (None if model_class == ALL_MODELS else model_class)
            assert sim_limits.model_dump() == limits.model_dump(exclude={"concurrency"})
            if model_class != ALL_MODELS:
                own[model] = limits.model_dump()
        assert {m: r["limits"] for m, r in rows[lane]["model_limits"].items()} == own
    assert set(rows["claude1"]["model_limits"]) == {HAIKU}


def test_status_limiter_and_simulator_refuse_the_same_call_of_a_limited_model(
    config: Config, keys: Keys, redis_client: redis.Redis
) -> None:
    limiter = RedisLimiter(redis_client, keys)
    granted = [_reserve(limiter, config, "claude1", HAIKU) for _ in range(7)]
    assert [isinstance(g, Acquired) for g in granted] == [True] * 6 + [False]
    denied = granted[-1]
    assert isinstance(denied, Denied) and denied.reason is Reason.REQUESTS
    assert isinstance(_reserve(limiter, config, "claude1", SONNET), Acquired)
    with (
        Simulator(port=0, profiles=sim_profiles(config)) as sim,
        anthropic.Anthropic(api_key="k", base_url=sim.base_url("claude1"), max_retries=0) as client,
    ):
        for _ in range(6):
            client.messages.create(model=HAIKU, max_tokens=16, messages=PING)
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model=HAIKU, max_tokens=16, messages=PING)
        sonnet = client.messages.create(model=SONNET, max_tokens=16, messages=PING)
    assert caught.value.response.headers["anthropic-ratelimit-requests-limit"] == "6"
    assert sonnet.model == SONNET
