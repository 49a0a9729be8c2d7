"""The worker's Celery app: ``celery -A lanes.workers.celery_app worker -Q claude1,zai``.

Reads the config from ``$LANES_CONFIG`` (else the default search path) and Redis from the
config's ``redis_url`` / ``$REDIS_URL`` (else 127.0.0.1:6379). ``lanes worker`` uses this.
This module is the composition root of a worker process: it opens the deployment
(:func:`lanes.deployment.open_deployment`), builds the layers around each call and the provider
factory, and hands them to :class:`~lanes.workers.context.WorkerContext`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from celery.signals import celeryd_after_setup, celeryd_init, worker_ready, worker_shutdown
from kombu.exceptions import OperationalError

from lanes.broker.amqp import amqp_queues, batch_queue, dead_letter_queue, declare, is_amqp
from lanes.broker.connection import refuse_open_redis, require_redis_url
from lanes.deployment import open_deployment
from lanes.kernel.config import load_config
from lanes.layers.budgets.worker import WorkerBudget
from lanes.layers.build import call_layers
from lanes.stores.consumers import start_heartbeat
from lanes.workers.context import WorkerContext
from lanes.workers.providers import build_batch_provider, build_provider
from lanes.workers.services.batch_gate import start_batch_gate
from lanes.workers.services.batcher import Batcher, start_batcher
from lanes.workers.services.janitor import Janitor
from lanes.workers.services.ledger_supervisor import DrainerSupervisor, supervise_drainer
from lanes.workers.services.liveness import took_canary
from lanes.workers.services.maintenance import consumed_lanes, start_janitor, start_liveness
from lanes.workers.tasks import register_tasks

# One line per HTTP call drowns the task log; Celery's own lines already say what happened.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpx2").setLevel(logging.WARNING)

config = load_config()
redis_url = require_redis_url(config)
refuse_open_redis(config, redis_url)
# redis-py connects lazily and re-creates its pool after a fork, so opening it here is safe
# for every Celery pool type.
deployment = open_deployment(config, redis_url)
app = deployment.app
client, keys, stores = deployment.redis, deployment.keys, deployment.stores
context = WorkerContext(
    config,
    stores,
    build_provider,
    ping=client.ping,
    layers=call_layers(config, stores, budget=WorkerBudget(config, stores.budget)),
)
register_tasks(app, lambda: context, on_canary=lambda lane: took_canary(client, keys, lane))


@celeryd_init.connect
def _green_without_heartbeats(options: dict[str, object], **_: object) -> None:
    """With AMQP heartbeats, Celery's consumer under a green pool takes about ten messages a
    second however many calls it could start (lanes bench inflight); without them it keeps
    up. What that costs: README, Queues on RabbitMQ."""
    if is_amqp(config) and _green(options.get("pool") or options.get("pool_cls") or ""):
        app.conf.broker_heartbeat = 0


@celeryd_after_setup.connect
def _rabbitmq_queues(sender: str, instance: object, **_: object) -> None:
    """On RabbitMQ: consume a lane's batch queue with the lane's (``-Q claude1`` takes
    ``claude1`` and ``claude1.batch``), and declare every lane's queues before Celery's native
    delayed delivery binds them all at start (a queue not yet declared would be left unbound,
    and a delayed message for it dropped)."""
    if not is_amqp(config):
        return
    queues = app.amqp.queues
    for lane in [name for name in list(queues.consume_from) if name in config.instances]:
        queues.select_add(queues[batch_queue(lane)])
    try:
        declare(app, [*amqp_queues(config), dead_letter_queue(config)])
    except (OSError, OperationalError) as exc:  # the consumer connects, and says so, later
        logging.getLogger("lanes.workers").warning("lane queues not declared yet: %s", exc)


def _green(pool: object) -> bool:
    """Whether a worker's pool (``-P``: a name, or the class it became) is gevent or eventlet."""
    name = pool if isinstance(pool, str) else getattr(pool, "__module__", "")
    return any(green in name for green in ("gevent", "eventlet"))


_stop_janitor = threading.Event()
_drainer: list[DrainerSupervisor] = []


@worker_ready.connect
def _start_janitor(sender: object = None, **_: object) -> None:
    lanes = consumed_lanes(sender) or config.lanes()
    node = str(getattr(sender, "hostname", "") or f"{socket.gethostname()}:{os.getpid()}")
    start_heartbeat(client, keys, node, lanes, _stop_janitor)
    if config.liveness.interval_s > 0:
        start_liveness(app, client, keys, lanes, config.liveness, _stop_janitor)
    if is_amqp(config):
        start_batch_gate(app, node, lanes, _stop_janitor)
    elif config.janitor_interval_s > 0:  # RabbitMQ keeps what it confirmed and what was held
        janitor = Janitor(
            client, keys, stores.jobs, app, config.lanes(), quiet_s=config.janitor_quiet_s,
            parked=stores.batches.parked_ids,
        )  # fmt: skip
        start_janitor(janitor, config.janitor_interval_s, _stop_janitor)
    batcher = Batcher(context, app, build_batch_provider)
    if batcher.lanes():
        start_batcher(batcher, _stop_janitor)
    if config.ledger.enabled:
        _drainer.append(supervise_drainer(deployment))  # replaced if it dies


@worker_shutdown.connect
def _stop_janitor_thread(**_: object) -> None:
    _stop_janitor.set()
    for drainer in _drainer:
        drainer.close()  # it drains what is queued, then stops
