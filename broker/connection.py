"""Which Redis a process talks to, when it must not start one of its own."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from broker.embedded import DEFAULT_HOST, DEFAULT_PORT, port_open
from kernel.config import Config
from kernel.errors import InfrastructureError


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


def with_db(url: str, db: int) -> str:
    """``url`` pointing at Redis database ``db`` (``redis://h:6379`` → ``redis://h:6379/3``)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))
