"""A job's answer as it is generated, on a Redis stream (``XADD`` and a blocking ``XREAD``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from lanes.broker.stream import StreamEvent
from lanes.kernel.errors import InfrastructureError
from lanes.stores.keys import Keys

FIELD = "e"


class RedisStreams:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    def append(self, job_id: str, events: Sequence[StreamEvent], ttl_s: int) -> None:
        key = self._keys.stream(job_id)
        pipe = self._client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(key, {FIELD: event.model_dump_json(exclude_defaults=True)})
        pipe.expire(key, ttl_s)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            raise InfrastructureError(
                f"Redis: the stream of job {job_id} not written: {exc}"
            ) from exc

    def read(self, job_id: str, after: str, block_s: float) -> list[tuple[str, StreamEvent]]:
        key = self._keys.stream(job_id)
        try:
            found = self._client.xread({key: after}, count=1000, block=max(1, int(block_s * 1000)))
        except redis.RedisError as exc:
            raise InfrastructureError(f"Redis: the stream of job {job_id} not read: {exc}") from exc
        events: list[tuple[str, StreamEvent]] = []
        replies: list[tuple[Any, list[tuple[Any, dict[Any, Any]]]]] = found or []  # type: ignore[assignment]
        for _, entries in replies:
            for position, fields in entries:
                raw: str | bytes = fields.get(FIELD) or fields[FIELD.encode()]
                events.append((_text(position), StreamEvent.model_validate_json(raw)))
        return events


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
