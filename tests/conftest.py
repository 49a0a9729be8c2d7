"""Shared fixtures: a real Redis (``$REDIS_URL``, else 127.0.0.1:6379, else an embedded one),
a key prefix per test, and the example config."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry

from lanes.broker.app import create_app, wait_for_queues
from lanes.broker.connection import with_db
from lanes.client import Lanes
from lanes.kernel.config import Config, load_config
from lanes.ops.processes import child_env, spawn, stop_all
from lanes.ops.stack import sim_profiles, worker_command
from lanes.sim import Simulator
from lanes.stores.keys import Keys
from lanes.stores.redis import redis_stores
from lanes.workers.context import WorkerContext
from lanes.workers.providers import build_provider

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "lanes" / "data" / "lanes.yaml"
TEST_DB = 12


def default_sigint() -> None:
    """``preexec_fn`` of a child the test will Ctrl-C: a shell that started the test run in
    the background left SIGINT ignored, and a child inherits that; restore the default so
    the child gets its KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis for the whole run; test keys live under a unique prefix in db 12."""
    from lanes.broker.embedded import resolve_redis

    env_url = os.environ.get("REDIS_URL")
    with resolve_redis(env_url or None, state_dir=ROOT / ".lanes" / "test-redis") as base:
        url = base if env_url else with_db(base, TEST_DB)
        yield url


@pytest.fixture(scope="session")
def isolated_redis_url(redis_url: str) -> Iterator[str]:
    """Another db of the test Redis, for tests whose workers must not share queues with the
    session's worker (queue names are lane names, the same in every deployment)."""
    url = with_db(redis_url, TEST_DB - 1)
    yield url
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


@pytest.fixture
def keys() -> Keys:
    return Keys(prefix=f"lanes-test-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def redis_client(redis_url: str, keys: Keys) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    for key in client.scan_iter(keys.scan_pattern(), count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
def dead_client() -> Iterator[redis.Redis]:
    """A client of a Redis that is not there: every command fails at once."""
    client = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    yield client
    client.close()


@pytest.fixture(scope="session")
def example_config() -> Config:
    return load_config(EXAMPLE, env={})


def redis_context(config: Config, client: redis.Redis, keys: Keys) -> WorkerContext:
    """A worker context on the real Redis stores under ``keys``, with the real providers."""
    stores = redis_stores(client, keys, ttl_s=config.result_ttl_s)
    return WorkerContext(config=config, stores=stores, providers=build_provider, ping=client.ping)


def write_config(config: Config, directory: Path, **updates: object) -> tuple[Config, Path]:
    """Write ``config`` (with top-level ``updates`` merged one level deep) to a YAML file."""
    data = config.model_dump(mode="json")
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "lanes.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_config(path, env={}), path


@dataclass
class LaneStack:
    """A simulator, one real worker process for every lane, and a client, on the test Redis."""

    config: Config
    config_path: Path
    redis_url: str
    sim: Simulator
    worker: subprocess.Popen[bytes]
    log_file: Path

    def client(self) -> Lanes:
        return Lanes(self.config, self.redis_url)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True)


@pytest.fixture(scope="session")
def lane_stack(
    redis_url: str, example_config: Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LaneStack]:
    """Session-wide: every lane served by one worker process (threads) against the simulator."""
    tmp = tmp_path_factory.mktemp("stack")
    sim = Simulator(port=0, profiles=sim_profiles(example_config)).start()
    prefix = f"lanes-test-{uuid.uuid4().hex[:8]}"
    config, path = write_config(
        example_config,
        tmp,
        redis_url=redis_url,
        redis_prefix=prefix,
        state_dir=str(tmp / "state"),
        simulator={"mode": "always", "port": sim.port, "latency_s": 0.05, "latency_jitter_s": 0.0},
        retry={"attempts_per_step": 2, "backoff_base_s": 0.05, "backoff_max_s": 0.2},
    )
    for name, profile in sim_profiles(config).items():
        sim.set_profile(name, profile)
    log_file = tmp / "worker.log"
    env = child_env({"LANES_CONFIG": str(path), "REDIS_URL": redis_url})
    cmd = worker_command(config, config.lanes(), f"test-{prefix}", 16)
    worker = spawn(cmd, env=env, log_file=log_file)
    stack = LaneStack(config, path, redis_url, sim, worker, log_file)
    try:
        app = create_app(config, redis_url)
        wait_for_queues(app, set(config.lanes()), timeout_s=60)
        app.close()
        yield stack
    finally:
        stop_all([worker])
        sim.stop()
        client = stack.redis()
        for key in client.scan_iter(f"{prefix}:*", count=1000):
            client.delete(key)


# --- tools some tests drive (a browser, promtool) ----------------------------------------------


def missing_tool(reason: str) -> NoReturn:
    """Skip a test whose outside tool is missing, saying why; under ``$CI`` fail instead:
    CI runs every test."""
    print(reason)
    if os.environ.get("CI"):
        pytest.fail(f"{reason} ($CI is set: this test must run)")
    pytest.skip(reason)


def apt(args: list[str], timeout_s: float, cwd: Path | None = None) -> bool:
    """``apt-get ARGS`` without questions; whether it succeeded."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        done = subprocess.run(
            ["apt-get", *args], env=env, cwd=cwd, capture_output=True, timeout=timeout_s
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def apt_retry(args: list[str], timeout_s: float, cwd: Path | None = None) -> str:
    """``apt-get ARGS``, once more after ``apt-get update`` (as root) if it fails; why it
    failed, or "" when it worked."""
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine"
    if apt(args, timeout_s, cwd):
        return ""
    if os.geteuid() == 0 and apt(["update"], 180) and apt(args, timeout_s, cwd):
        return ""
    return f"`apt-get {' '.join(args)}` failed" + (
        ", also after `apt-get update`" if os.geteuid() == 0 else " (not root: no apt-get update)"
    )
