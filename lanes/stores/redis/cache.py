"""The response cache in Redis (:class:`lanes.stores.cache.ResponseCache`), shared by every
process that uses the same key prefix: one JSON string per answer under
``Keys.response_cache(key)``, expiring by its ``EX`` TTL. Redis errors surface as
:class:`lanes.kernel.errors.InfrastructureError`."""

from __future__ import annotations

import logging
import re

import redis

from lanes.stores.cache import CachedAnswer, answer_json, check_ttl, parse_answer
from lanes.stores.keys import Keys
from lanes.stores.scripts import redis_errors

log = logging.getLogger(__name__)

SCAN_COUNT = 1000
"""Keys Redis looks at per ``SCAN`` step of :meth:`RedisResponseCache.clear`."""
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def glob_escape(literal: str) -> str:
    """``literal`` as a Redis ``MATCH`` pattern that matches only itself."""
    return _GLOB_SPECIAL.sub(r"\\\1", literal)


class RedisResponseCache:
    """:class:`ResponseCache` in Redis, shared by every process using the same ``keys``."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    def get(self, key: str) -> CachedAnswer | None:
        """See :meth:`ResponseCache.get`. An unreadable value is deleted (a racing ``put`` of
        a good one may go with it: that costs one more miss, never a wrong answer)."""
        name = self._keys.response_cache(key)
        with redis_errors("reading the response cache"):
            raw = self._client.get(name)
        if raw is None:
            return None
        answer = parse_answer(raw)
        if answer is None:
            log.warning("dropping an unreadable cached answer under %s", name)
            with redis_errors("dropping an unreadable cached answer"):
                self._client.delete(name)
        return answer

    def put(self, key: str, answer: CachedAnswer, ttl_s: int) -> None:
        check_ttl(ttl_s)
        with redis_errors("writing the response cache"):
            self._client.set(self._keys.response_cache(key), answer_json(answer), ex=ttl_s)

    def put_in(
        self, pipe: redis.client.Pipeline, key: str, answer: CachedAnswer, ttl_s: int
    ) -> None:
        """Queue :meth:`put` on ``pipe`` (e.g. the pipeline that records the job's result).
        Its reply is ``True``."""
        check_ttl(ttl_s)
        pipe.set(self._keys.response_cache(key), answer_json(answer), ex=ttl_s)

    def clear(self) -> int:
        """See :meth:`ResponseCache.clear`: walks the prefix's cache keys with ``SCAN`` (never
        ``KEYS``, which blocks Redis) and deletes them a batch at a time. Answers cached while
        it runs may survive."""
        pattern = glob_escape(self._keys.response_cache("")) + "*"
        removed = 0
        with redis_errors("clearing the response cache"):
            batch: list[str | bytes] = []
            for name in self._client.scan_iter(match=pattern, count=SCAN_COUNT):
                batch.append(name)
                if len(batch) >= SCAN_COUNT:
                    removed += int(self._client.delete(*batch))
                    batch = []
            if batch:
                removed += int(self._client.delete(*batch))
        return removed
