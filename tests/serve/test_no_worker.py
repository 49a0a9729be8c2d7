"""A front door whose lanes no worker consumes says so within seconds (503), in both the
plain and the streamed form, and leaves no job behind to run later."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from lanes.client import Lanes
from lanes.kernel.config import Config
from lanes.serve.app import build_app
from lanes.serve.door import Door
from lanes.stores.memory.ledger import MemoryKeys

from ..conftest import write_config


@pytest.fixture
def idle_door(
    isolated_redis_url: str, example_config: Config, tmp_path: Path
) -> Iterator[tuple[TestClient, str]]:
    """A front door on a Redis db no worker listens on, and a key it takes."""
    config, _ = write_config(example_config, tmp_path, redis_url=isolated_redis_url,
                             redis_prefix=f"door-idle-{uuid.uuid4().hex[:6]}",
                             state_dir=str(tmp_path / "state"))  # fmt: skip
    keys = MemoryKeys()
    key = keys.create_key("idle", None, None, time.time()).key
    with Lanes(config, isolated_redis_url) as lanes:
        door = Door(config, lanes, keys)
        try:
            with TestClient(build_app(door)) as client:
                yield client, key
        finally:
            door.close()


def test_no_worker_is_a_503_within_seconds(idle_door: tuple[TestClient, str]) -> None:
    client, key = idle_door
    for stream in (False, True):
        started = time.monotonic()
        reply = client.post("/v1/messages", headers={"x-api-key": key}, json={
            "model": "lanes:claude2", "max_tokens": 16, "stream": stream,
            "messages": [{"role": "user", "content": "Say hi"}]})  # fmt: skip
        assert reply.status_code == 503, reply.text
        error = reply.json()["error"]
        assert error["type"] == "overloaded_error"
        assert "no worker consumes" in error["message"] and "cancelled" in error["message"]
        assert time.monotonic() - started < 15


@pytest.mark.parametrize("body", [b"{" * 100_000, b"[1, 2"])
def test_a_body_that_is_no_json_is_a_400(idle_door: tuple[TestClient, str], body: bytes) -> None:
    client, key = idle_door
    reply = client.post("/v1/chat/completions", content=body,
                        headers={"authorization": f"Bearer {key}"})  # fmt: skip
    assert reply.status_code == 400 and "not JSON" in reply.json()["error"]["message"]
