"""Opening a deployment: every connection a process shares with the rest of its deployment,
made from its config in one place.

::

    with open_deployment(config) as deployment:   # Redis: redis_url, $REDIS_URL, 127.0.0.1:6379
        deployment.stores.jobs.result(job_id)
        deployment.app.control.ping(timeout=1.0)

A :class:`Deployment` holds the Redis client, the keys under ``redis_prefix``, the stores on
them, the Celery app and the SQL ledger; whoever needs one of them receives it from here.
The app is built on first use and the ledger opened on first use (a database that is away
must not stop a process from starting, and most never read it).
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import redis
from celery import Celery
from redis.backoff import NoBackoff
from redis.retry import Retry

from lanes.broker.amqp import batch_queue, is_amqp, queue_depths
from lanes.broker.app import create_app
from lanes.broker.connection import require_redis_url
from lanes.broker.sentinel import is_sentinel, primary_client
from lanes.kernel.config import Config
from lanes.kernel.config.models import Limits, with_margin
from lanes.kernel.errors import InfrastructureError
from lanes.stores import Stores
from lanes.stores.keys import Keys
from lanes.stores.redis import redis_stores
from lanes.stores.sql.lazy import LazyLedger


def reserved_limits(config: Config) -> dict[str, Limits]:
    """Each enabled instance's own limits as its workers reserve them (``limit_margin``
    applied); instances whose models have limits of their own are left out (their buckets
    are per model class)."""
    return {
        name: with_margin(spec.limits, config.limit_margin)
        for name, spec in config.instances.items()
        if spec.enabled and not spec.model_limits
    }


class Deployment:
    """One process's connections to its deployment. Thread-safe; :meth:`close` ends them."""

    def __init__(self, config: Config, redis_url: str, client: redis.Redis) -> None:
        self.config = config
        self.redis_url = redis_url
        self.redis = client
        self.keys = Keys(config.redis_prefix)
        replicas = config.redis_wait_replicas if is_sentinel(redis_url) else 0
        self.stores: Stores = redis_stores(
            client, self.keys, ttl_s=config.result_ttl_s, limits=reserved_limits(config),
            replicas=replicas, wait_ms=config.redis_wait_ms,
        )  # fmt: skip
        self.ledger = LazyLedger(config)
        """The SQL ledger, opened by its first ``get()`` (InfrastructureError while the
        database cannot be opened; tried again on the next use)."""
        self._app: Celery | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Celery:
        """The Celery app of this deployment (lane queues, results), built on first use."""
        with self._lock:
            if self._app is None:
                self._app = create_app(self.config, self.redis_url)
            return self._app

    def queue_depths(self, lanes: list[str]) -> dict[str, int]:
        """Messages waiting on each lane's queues (interactive and batch); InfrastructureError
        when the broker (Redis, or RabbitMQ) does not answer."""
        if is_amqp(self.config):
            names = {lane: (lane, batch_queue(lane)) for lane in lanes}
            ready = queue_depths(self.app, [name for pair in names.values() for name in pair])
            return {lane: sum(ready[name] for name in pair) for lane, pair in names.items()}
        lists = [self.keys.queue_lists(lane) for lane in lanes]
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for name in (name for names in lists for name in names):
                    pipe.llen(name)
                replies = iter(pipe.execute())
        except redis.RedisError as exc:
            raise InfrastructureError(f"cannot read the lane queues: {exc}") from exc
        return {
            lane: sum(next(replies) for _ in names)
            for lane, names in zip(lanes, lists, strict=True)
        }

    def close(self) -> None:
        with self._lock:
            app, self._app = self._app, None
        if app is not None:
            app.close()
        self.redis.close()
        self.ledger.close()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


POOL_WAIT_S = 30.0
"""Longest a Redis command waits for a free connection of its process's pool."""


def open_deployment(
    config: Config,
    redis_url: str | None = None,
    *,
    timeout_s: float | None = None,
    ask_once: bool = False,
) -> Deployment:
    """The deployment ``config`` describes, on the Redis at ``redis_url`` (default: the
    config's, :func:`lanes.broker.connection.require_redis_url`; InfrastructureError when none
    answers). Connects lazily: nothing is sent to Redis here.

    ``timeout_s``: the longest a Redis command may wait for its answer (None: no limit).
    ``ask_once``: no retries, and connecting within ``timeout_s`` too (a diagnosis asks once).
    """
    url = redis_url or require_redis_url(config)
    options: dict[str, Any] = {}
    if timeout_s is not None:
        options["socket_timeout"] = timeout_s
    if ask_once:
        options.update(socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0))
    most = max(100, 2 * config.most_concurrency())
    if is_sentinel(url):
        client = primary_client(url, config.redis_sentinel_master, decode_responses=True,
                                max_connections=most, **options)  # fmt: skip
        return Deployment(config, url, client)
    # A command waits for a free connection rather than failing when the pool is spent: a
    # gevent worker's thousands of jobs may all want one at the same moment.
    pool = redis.BlockingConnectionPool.from_url(
        url, decode_responses=True, max_connections=most, timeout=POOL_WAIT_S, **options
    )
    client = redis.Redis(connection_pool=pool)
    return Deployment(config, url, client)
