"""One opener: a deployment's Redis client, keys, stores, Celery app and ledger come from
:func:`lanes.deployment.open_deployment`, and nothing else in the product makes them."""

from __future__ import annotations

import re
from pathlib import Path

import redis

from lanes.client import Lanes
from lanes.deployment import open_deployment
from lanes.kernel.config import Config
from lanes.stores.keys import Keys

ROOT = Path(__file__).resolve().parents[1]

ELSEWHERE = {
    "lanes/deployment.py": "the opener itself",
    "lanes/broker/embedded.py": "probes a Redis URL before any deployment opens on it",
    "lanes/bench/harness.py": "empties the benchmark's own Redis database",
}
"""The files that may still make a Redis client or keys of their own, and why."""


def test_deployment_opens_everything_on_one_client_under_its_prefix(
    example_config: Config, redis_url: str, redis_client: redis.Redis, keys: Keys, tmp_path: Path
) -> None:
    config = example_config.model_copy(
        update={"redis_prefix": keys.prefix, "database_url": f"sqlite:///{tmp_path / 'l.db'}"}
    )
    with open_deployment(config, redis_url) as deployment:
        assert deployment.redis_url == redis_url
        assert deployment.keys.prefix == keys.prefix
        deployment.stores.lane_state.disable("zai", "a test")
        assert redis_client.exists(*redis_client.keys(keys.scan_pattern()))  # same Redis, prefix
        assert deployment.app is deployment.app  # built once
        assert deployment.app.conf.broker_url == redis_url
        assert not (tmp_path / "l.db").exists()  # the ledger waits for its first use
        assert deployment.ledger.get().performance() == []
        assert (tmp_path / "l.db").exists()


def test_a_client_sends_through_the_deployment_it_opened(
    example_config: Config, redis_url: str, keys: Keys
) -> None:
    config = example_config.model_copy(update={"redis_prefix": keys.prefix})
    with Lanes(config, redis_url) as lanes:
        opened = lanes.deployment
        assert (lanes.redis, lanes.keys, lanes.stores, lanes.app) == (
            opened.redis, opened.keys, opened.stores, opened.app
        )  # fmt: skip
        assert lanes.redis_url == redis_url


def test_nothing_else_makes_a_redis_client_or_keys() -> None:
    made = re.compile(r"\bKeys\(|Redis\.from_url\(|redis\.Redis\(|StrictRedis\(")
    found = sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "lanes").rglob("*.py")
        if made.search(path.read_text(encoding="utf-8"))
    )
    assert set(found) <= set(ELSEWHERE), found
