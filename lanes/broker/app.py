"""The Celery app: JSON only, one queue per lane, late acks, redelivery on worker loss.

Queues are named after their lanes (``claude1``, ``zai``...); every key Celery and kombu write
(queues, ``unacked``, results, pidbox and event channels) lives under the deployment's
``redis_prefix`` (:func:`celery_prefix`). Priority, where needed, is carried by
separate queues, not by message priorities. No default queue is declared: a task sent without
a lane is refused (``QueueNotFound``) instead of waiting on a queue nobody consumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from celery import Celery
from kombu.entity import Queue

from lanes.broker.amqp import amqp_conf, is_amqp
from lanes.broker.sentinel import is_sentinel
from lanes.kernel.config import Config
from lanes.kernel.errors import InfrastructureError

BATCH_PRIORITY = 9
"""The priority of a batch job's messages. kombu's Redis transport keeps a lane's messages in
one list per priority step (0, 3, 6, 9: its defaults, kept) and reads them lowest number
first: interactive messages (no priority, so 0) sit in the lane's own list and are taken
before any batch message in the lane's priority-9 list."""
PRIORITY_SEP = "\x06\x16"
"""What kombu's Redis transport puts between a queue's name and a priority step (its
default ``sep``)."""


def batch_list(queue: str) -> str:
    """The Redis list (before the deployment's prefix) of a lane's batch messages."""
    return f"{queue}{PRIORITY_SEP}{BATCH_PRIORITY}"


def celery_prefix(redis_prefix: str) -> str:
    """The start of every key Celery and kombu write for a deployment: lane queues,
    ``unacked``, results, pidbox and event channels (their ``global_keyprefix``). Two
    deployments with different prefixes share a Redis database without seeing each other's
    queues, workers or results."""
    return f"{redis_prefix}:celery:"


def celery_conf(config: Config, redis_url: str) -> dict[str, object]:
    """Celery settings derived from the lanes config: the queues on Redis, or on RabbitMQ
    (:mod:`lanes.broker.amqp`) with the results still on Redis."""
    # One visibility timeout for broker and result transports: a message not acked within it is
    # redelivered, so it must exceed the longest call a lane allows.
    longest_call_s = max(spec.timeout_s for spec in config.instances.values())
    visibility_s = max(config.visibility_timeout_s, int(longest_call_s * 2))
    # kombu >= 5.7 looks for expired messages only every interval * throttle seconds
    # (10 * 10 by default); a throttle of 1 keeps redelivery within ~10 s of the timeout.
    transport = {
        "visibility_timeout": visibility_s,
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
        "global_keyprefix": celery_prefix(config.redis_prefix),
        # kombu's Redis connections per process (default 10): every task of a worker acks,
        # and may publish, through them at once; too few and acks fail (MaxConnectionsError).
        "max_connections": max(64, 2 * config.most_concurrency()),
    }
    if is_sentinel(redis_url):
        transport["master_name"] = config.redis_sentinel_master
    queues = [Queue(lane, routing_key=lane) for lane in config.lanes()]
    conf: dict[str, object] = {
        "broker_url": redis_url,
        "result_backend": redis_url,
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": transport,
        "result_backend_transport_options": transport,
        "result_expires": config.result_ttl_s,
        # One result backend per process: Celery's default is one per thread, which under a
        # gevent pool is one (with its own Redis pool) per job.
        "result_backend_thread_safe": True,
        "task_queues": queues,
        "task_create_missing_queues": False,
        # Task events only feed Flower, which turns the workers' on while it runs
        # (lanes.ops.flower_server): publishing them costs a worker about a fifth of its CPU.
        "task_send_sent_event": False,
        "worker_send_task_events": False,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "timezone": "UTC",
    }
    if is_amqp(config):
        conf.update(amqp_conf(config))
    return conf


def create_app(config: Config, redis_url: str) -> Celery:
    """A Celery app for this config. Tasks are registered by the worker
    (``lanes.workers.tasks``)."""
    app = Celery("lanes", set_as_current=False)
    app.conf.update(celery_conf(config, redis_url))
    return app


def wait_for_queues(
    app: Celery,
    queues: set[str],
    *,
    timeout_s: float = 60.0,
    check: Callable[[], None] = lambda: None,
) -> None:
    """Block until some worker consumes every queue in ``queues``.

    ``check`` runs between polls (e.g. to raise if a worker process died).
    """
    deadline = time.monotonic() + timeout_s
    missing = set(queues)
    while missing:
        check()
        replies = app.control.inspect(timeout=0.5).active_queues() or {}
        for consumed in replies.values():
            missing -= {q["name"] for q in consumed}
        if missing and time.monotonic() > deadline:
            raise InfrastructureError(
                f"no worker consumes {', '.join(sorted(missing))} after {timeout_s}s"
            )
