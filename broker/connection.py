"""Which Redis a process talks to, when it must not start one of its own."""

from __future__ import annotations

import os

from broker.embedded import DEFAULT_HOST, DEFAULT_PORT, port_open
from lanes.config import Config
from lanes.errors import InfrastructureError


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
