"""A rotation counter shared by every process: one Redis ``INCR`` per turn."""

from __future__ import annotations

import redis

from lanes.stores.keys import Keys
from lanes.stores.scripts import redis_errors


class RedisCounter:
    """:class:`lanes.router.strategies.RotationCounter` in Redis, so two dispatchers on two hosts
    alternate the members of a pool (and the ``round_robin`` strategy) between them."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    def next(self, key: str) -> int:
        with redis_errors(f"turning the rotation {key!r}"):
            return int(self._client.incr(self._keys.pool_counter(key)))
