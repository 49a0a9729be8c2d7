"""The lanes' queues on RabbitMQ (``broker.url``), Redis kept for every other state.

Each lane has two queues on one topic exchange: ``<lane>`` for interactive messages and
``<lane>.batch`` for batch ones (quorum queues have no message priorities, so priority is a
queue of its own; :mod:`lanes.workers.services.batch_gate` lets a worker take batch messages
only while the lane's interactive queue is empty). A quorum queue keeps every message on a
majority of the cluster's nodes; publishes wait for the broker's confirm, so a submit that
returned is stored on that majority. A delayed message (a wait, a backoff) goes through
Celery's native delayed delivery (its ``celery_delayed_*`` queues and exchanges, declared by
the workers), the only kind of countdown a quorum queue supports.

RabbitMQ redelivers what a lost consumer held and marks it redelivered; a delivery counter
(``x-delivery-count``, quorum queues) lets a worker fail a job whose workers died each time
instead of running it for ever.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celery import Celery
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.exceptions import OperationalError
from kombu.transport.native_delayed_delivery import calculate_routing_key

from lanes.kernel.config import Config
from lanes.kernel.errors import InfrastructureError

EXCHANGE = "lanes"
"""The topic exchange every lane queue is bound to (native delayed delivery needs a topic
exchange: a delayed message comes back by its routing key)."""
BATCH_SUFFIX = ".batch"
DEAD_LETTERS = "lanes.dead-letters"
"""Where a quorum queue puts a message delivered ``2 * delivery_limit`` times."""
DELAYED_EXCHANGE = Exchange("celery_delayed_27", type="topic")
"""The top level of Celery's native delayed delivery (what ``send_task`` publishes a
countdown to on quorum queues)."""
DELIVERY_COUNT = "x-delivery-count"
PUBLISH_RETRY = {"max_retries": 8, "interval_start": 0, "interval_step": 0.5, "interval_max": 2}


def is_amqp(config: Config) -> bool:
    return config.broker.url is not None


def batch_queue(lane: str) -> str:
    """The queue of a lane's batch messages on RabbitMQ (lane names have no dots)."""
    return f"{lane}{BATCH_SUFFIX}"


def lane_of(queue: str) -> str:
    return queue.removesuffix(BATCH_SUFFIX)


def _queue(config: Config, name: str, exchange: Exchange) -> Queue:
    arguments: dict[str, Any] = {"x-queue-type": config.broker.queue_type}
    if config.broker.queue_type == "quorum":
        arguments |= {
            "x-delivery-limit": 2 * config.broker.delivery_limit,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": DEAD_LETTERS,
        }
    return Queue(name, exchange, routing_key=name, queue_arguments=arguments, durable=True)


def amqp_queues(config: Config) -> list[Queue]:
    """Every lane's two queues (the dead-letter queue is :func:`dead_letter_queue`)."""
    exchange = Exchange(EXCHANGE, type="topic", durable=True)
    names = [name for lane in config.lanes() for name in (lane, batch_queue(lane))]
    return [_queue(config, name, exchange) for name in names]


def dead_letter_queue(config: Config) -> Queue:
    return Queue(DEAD_LETTERS, queue_arguments={"x-queue-type": config.broker.queue_type},
                 durable=True)  # fmt: skip


def amqp_conf(config: Config) -> dict[str, object]:
    """The Celery settings that put the queues on RabbitMQ."""
    assert config.broker.url is not None
    return {
        "broker_url": config.broker.url,
        "broker_transport_options": {"confirm_publish": True},
        # A publish to a node that went away moves to the next node of broker.url: give it
        # the few seconds a reconnect takes instead of Celery's 0.6 s.
        "task_publish_retry_policy": PUBLISH_RETRY,
        "broker_native_delayed_delivery_queue_type": config.broker.queue_type,
        "worker_detect_quorum_queues": True,
        "task_queues": amqp_queues(config),
        # lanes' own: batch messages on a queue of their own, countdowns through native
        # delayed delivery (read by lanes.broker.message).
        "lanes_batch_queues": True,
        "lanes_native_delay": config.broker.queue_type == "quorum",
    }


def delayed_route(countdown_s: float, queue: Queue) -> dict[str, Any]:
    """Where to publish a message due in ``countdown_s`` for ``queue``: Celery's native
    delayed delivery (what ``send_task`` does for a countdown on quorum queues)."""
    return {
        "exchange": DELAYED_EXCHANGE,
        "routing_key": calculate_routing_key(max(1, round(countdown_s)), queue.routing_key),
        "exchange_type": "topic",
    }


def declare(app: Celery, queues: Iterable[Queue]) -> None:
    """Declare ``queues`` (and their exchange) on the broker (a worker does it on start; a
    publish declares its own queue)."""
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in queues:
            queue.bind(channel).declare()


def queue_depths(app: Celery, queues: Iterable[str]) -> dict[str, int]:
    """Messages ready on each queue, on a connection of its own; InfrastructureError when
    the broker does not answer."""
    with app.connection_for_read() as connection:
        return depths_on(connection, queues)


def depths_on(connection: Connection, queues: Iterable[str]) -> dict[str, int]:
    """Messages ready on each queue (a passive declare: a queue not yet declared has 0), on
    ``connection`` (connected again if it was lost); InfrastructureError when the broker does
    not answer."""
    try:
        connection.ensure_connection(max_retries=1, timeout=5)
        return {name: _ready(connection, name) for name in queues}
    except (OSError, OperationalError, *connection.connection_errors) as exc:
        raise InfrastructureError(f"cannot read the queues on RabbitMQ: {exc}") from exc


def _ready(connection: Any, name: str) -> int:
    counts = queue_counts(connection, name)
    return 0 if counts is None else counts[0]  # not declared yet: nothing was ever sent to it


def queue_counts(connection: Any, name: str) -> tuple[int, int] | None:
    """``(messages ready, consumers)`` of queue ``name`` (a passive declare on a channel of
    its own), None when it is not declared."""
    channel = connection.channel()
    try:
        declared = channel.queue_declare(name, passive=True)
        return int(declared.message_count), int(declared.consumer_count)
    except connection.channel_errors:
        return None
    finally:
        try:
            channel.close()
        except connection.channel_errors + connection.connection_errors:
            pass  # the broker closed it already (a passive declare of a missing queue does)
