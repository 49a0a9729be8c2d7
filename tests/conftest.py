"""Shared fixtures: a real Redis (``$REDIS_URL``, else 127.0.0.1:6379, else an embedded one),
a key prefix per test, and the example config."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from broker.keys import Keys
from lanes.config import Config, load_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "ops" / "lanes.yaml"
TEST_DB = 12


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis for the whole run; test keys live under a unique prefix in db 12."""
    from broker.embedded import resolve_redis

    env_url = os.environ.get("REDIS_URL")
    with resolve_redis(env_url or None, state_dir=ROOT / ".lanes" / "test-redis") as base:
        url = base if env_url else f"{base.rsplit('/', 1)[0]}/{TEST_DB}"
        yield url


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


@pytest.fixture(scope="session")
def example_config() -> Config:
    return load_config(EXAMPLE, env={})
