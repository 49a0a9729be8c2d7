"""Which Redis a process talks to, when it must not start one of its own."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit, urlunsplit

from lanes.broker.embedded import DEFAULT_HOST, DEFAULT_PORT, port_open
from lanes.kernel.config import Config
from lanes.kernel.errors import ConfigError, InfrastructureError
from lanes.kernel.redact import mask_url_secrets


def require_redis_url(config: Config) -> str:
    """The config's ``redis_url``, ``$REDIS_URL``, or 127.0.0.1:6379 if it answers."""
    url = config.redis_url or os.environ.get("REDIS_URL")
    if url:
        return url
    if port_open(DEFAULT_HOST, DEFAULT_PORT):
        return f"redis://{DEFAULT_HOST}:{DEFAULT_PORT}/0"
    raise InfrastructureError(
        "no Redis: set REDIS_URL (or redis_url in the config), start one on 127.0.0.1:6379, "
        "or use `lanes up` / `lanes demo`, which start an embedded Redis"
    )


def refuse_open_redis(config: Config, url: str) -> None:
    """With ``production: true``, a Redis, or a RabbitMQ node of ``broker.url``, reached
    without a password (RabbitMQ's ``guest`` counts as none) is refused: anyone who can reach
    it could read every queued prompt and push jobs billed to your accounts."""
    if not config.production:
        return
    parts = urlsplit(url)
    if not (parts.password or parse_qs(parts.query).get("password")):
        raise ConfigError(
            f"production: true, but Redis at {mask_url_secrets(url)} is reached without a"
            " password", key="redis_url",
            fix="set requirepass on Redis and put it in the URL (redis://:PASSWORD@host:6379/0,"
            " or REDIS_URL), or set production: false on a private machine",
        )  # fmt: skip
    for node in (config.broker.url or "").split(";"):
        broker = urlsplit(node.strip())
        if node.strip() and (not broker.password or broker.username == "guest"):
            raise ConfigError(
                f"production: true, but RabbitMQ at {mask_url_secrets(node.strip())} is reached"
                " without a password of its own", key="broker.url",
                fix="create a RabbitMQ user with a password and put both in broker.url"
                " (amqp://USER:PASSWORD@host:5672/vhost), or set production: false",
            )  # fmt: skip


def with_db(url: str, db: int) -> str:
    """``url`` pointing at Redis database ``db`` (``redis://h:6379`` → ``redis://h:6379/3``)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))
