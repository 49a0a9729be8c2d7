from __future__ import annotations

import pytest

from lanes.broker.connection import require_redis_url, with_db
from lanes.kernel.config import Config
from lanes.kernel.errors import InfrastructureError


@pytest.mark.parametrize(
    ("url", "db", "expected"),
    [
        ("redis://h:6379", 3, "redis://h:6379/3"),
        ("redis://:secret@h:6379/0", 5, "redis://:secret@h:6379/5"),
        ("rediss://h:6380/1?ssl_cert_reqs=none", 2, "rediss://h:6380/2?ssl_cert_reqs=none"),
    ],
)
def test_with_db_replaces_only_the_database(url: str, db: int, expected: str) -> None:
    assert with_db(url, db) == expected


def test_require_redis_url_prefers_the_config(
    example_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://from-env:1/0")
    assert require_redis_url(example_config) == "redis://from-env:1/0"
    cfg = example_config.model_copy(update={"redis_url": "redis://from-config:2/0"})
    assert require_redis_url(cfg) == "redis://from-config:2/0"


def test_require_redis_url_says_how_to_get_one(
    example_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr("lanes.broker.connection.port_open", lambda host, port: False)
    with pytest.raises(InfrastructureError, match="lanes up"):
        require_redis_url(example_config)
