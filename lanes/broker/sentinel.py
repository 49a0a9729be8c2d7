"""Redis behind Sentinel: ``redis_url`` as Celery writes it, one ``sentinel://`` address per
sentinel joined by ``;`` (``sentinel://:PASSWORD@h1:26379;sentinel://h2:26379/0``). The
password, user and database of the first address are the primary's; the sentinels are asked
without one. The primary's name is ``redis_sentinel_master``.

Every client follows a failover by itself: redis-py's and kombu's sentinel pools ask the
sentinels again whenever the primary they knew stops answering or turns replica.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

from lanes.kernel.errors import ConfigError, InfrastructureError

SCHEME = "sentinel://"
DEFAULT_MASTER = "mymaster"
"""``redis_sentinel_master``'s default, the name Redis's own examples give the primary."""
SEPARATOR = ";"


def is_sentinel(url: str) -> bool:
    return url.startswith(SCHEME)


@dataclass(frozen=True)
class SentinelUrl:
    nodes: tuple[tuple[str, int], ...]
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_sentinel(url: str) -> SentinelUrl:
    """The sentinels, database and credentials of a ``sentinel://`` URL."""
    nodes: list[tuple[str, int]] = []
    for chunk in url.split(SEPARATOR):
        parts = urlsplit(chunk.strip())
        try:
            port = parts.port or 26379
        except ValueError:
            port = 0
        if parts.scheme != "sentinel" or not parts.hostname or not port:
            raise ConfigError(
                f"{chunk.strip()!r} is not a sentinel address", key="redis_url",
                fix="write sentinel://host:26379;sentinel://host2:26379/0, one address per"
                " sentinel, joined by ';'",
            )  # fmt: skip
        nodes.append((parts.hostname, port))
    first = urlsplit(url.split(SEPARATOR)[0])
    last = urlsplit(url.split(SEPARATOR)[-1])
    path = (last.path or first.path).strip("/")
    if path and not path.isdigit():
        raise ConfigError(f"sentinel database {path!r} is not a number", key="redis_url",
                          fix="end the URL with /0 (or another database number)")  # fmt: skip
    return SentinelUrl(
        tuple(nodes), int(path or 0),
        unquote(first.username) if first.username else None,
        unquote(first.password) if first.password else None,
    )  # fmt: skip


def sentinels(url: str, *, timeout_s: float | None = None) -> Sentinel:
    parsed = parse_sentinel(url)
    kwargs = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    return Sentinel(list(parsed.nodes), sentinel_kwargs=kwargs)


def primary_client(url: str, master: str, **options: Any) -> redis.Redis:
    """A client of the primary the sentinels of ``url`` name ``master``; it finds the new
    primary after a failover. ``options`` go to each connection (timeouts, decoding)."""
    parsed = parse_sentinel(url)
    timeout_s = options.get("socket_timeout")
    client: redis.Redis = sentinels(url, timeout_s=timeout_s).master_for(
        master, db=parsed.db, username=parsed.username, password=parsed.password, **options
    )
    return client


def primary_address(url: str, master: str, *, timeout_s: float) -> tuple[str, int]:
    """Where the sentinels say ``master`` is now; InfrastructureError when none knows."""
    try:
        host, port = sentinels(url, timeout_s=timeout_s).discover_master(master)
    except (redis.RedisError, OSError) as exc:
        raise InfrastructureError(
            f"no sentinel of {len(parse_sentinel(url).nodes)} names a primary {master!r}: {exc}"
            " (check redis_sentinel_master and that the sentinels answer)"
        ) from exc
    return str(host), int(port)
