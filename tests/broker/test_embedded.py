from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from lanes.broker.embedded import EmbeddedRedis, free_port, resolve_redis
from lanes.kernel.errors import InfrastructureError


def test_embedded_redis_starts_with_aof_and_stops(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis").start()
    try:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        info = client.info("persistence")
        assert info["aof_enabled"] == 1
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        client.close()
    finally:
        server.stop()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(server.url, socket_connect_timeout=0.5).ping()


def test_embedded_redis_keeps_data_across_restart(tmp_path: Path) -> None:
    port = free_port()
    first = EmbeddedRedis(tmp_path / "redis", port=port).start()
    client = redis.Redis.from_url(first.url)
    client.set("survives", "yes")
    client.execute_command("BGREWRITEAOF")
    first.stop()
    second = EmbeddedRedis(tmp_path / "redis", port=port).start()
    try:
        assert redis.Redis.from_url(second.url).get("survives") == b"yes"
    finally:
        second.stop()


def test_embedded_redis_falls_back_to_bundled_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server on PATH any more
    server = EmbeddedRedis(tmp_path / "redis").start()
    try:
        assert redis.Redis.from_url(server.url).ping()
    finally:
        server.stop()


def test_resolve_redis_prefers_explicit_url(tmp_path: Path, redis_url: str) -> None:
    with resolve_redis(redis_url, state_dir=tmp_path) as url:
        assert url == redis_url
    assert not (tmp_path / "redis").exists()  # nothing embedded was started


def test_resolve_redis_refuses_an_explicit_url_that_does_not_answer(tmp_path: Path) -> None:
    with (
        pytest.raises(InfrastructureError, match=r"cannot reach Redis at redis://\*\*\*@127"),
        resolve_redis("redis://:pw@127.0.0.1:1/2", state_dir=tmp_path),
    ):
        pass


def test_resolve_redis_yields_a_working_server(tmp_path: Path) -> None:
    with resolve_redis(None, state_dir=tmp_path) as url:
        assert redis.Redis.from_url(url).ping()
    assert os.environ.get("PATH")
