"""Background work of a worker process: the sweep for lost messages
(:mod:`lanes.workers.services.janitor`)
and the liveness canaries (:mod:`lanes.workers.services.liveness`)."""

from __future__ import annotations

import logging
import threading

import redis
from celery import Celery

from lanes.broker.amqp import lane_of
from lanes.kernel.config import LivenessSpec
from lanes.kernel.errors import InfrastructureError
from lanes.stores.keys import Keys
from lanes.workers.services.janitor import Janitor
from lanes.workers.services.liveness import liveness, record_clock, send_canaries

log = logging.getLogger("lanes.janitor")


def start_janitor(janitor: Janitor, interval_s: float, stop: threading.Event) -> threading.Thread:
    """Sweep every ``interval_s`` until ``stop`` is set (a daemon thread)."""

    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                rescued = janitor.sweep()
            except InfrastructureError as exc:  # Redis away: try again next round
                log.warning("janitor sweep skipped: %s", exc)
                continue
            if rescued:
                log.warning("janitor re-sent %d lost message(s)", len(rescued))

    thread = threading.Thread(target=loop, name="lanes-janitor", daemon=True)
    thread.start()
    return thread


def start_liveness(
    app: Celery,
    client: redis.Redis,
    keys: Keys,
    lanes: list[str],
    spec: LivenessSpec,
    stop: threading.Event,
) -> threading.Thread:
    """Every ``spec.interval_s``: a canary down each of ``lanes``, this host's clock beside
    Redis's, and an error in the log when one of the lanes stops being consumed (a line again
    when it recovers)."""
    stuck: set[str] = set()

    def loop() -> None:
        while not stop.wait(spec.interval_s):
            try:
                send_canaries(app, client, keys, lanes)
                record_clock(client, keys)
                found = liveness(client, keys, lanes, spec.timeout_s)
            except (InfrastructureError, redis.RedisError, OSError) as exc:
                log.warning("liveness canary skipped: %s", exc)
                continue
            for lane, state in found.items():
                if state.consuming is False and lane not in stuck:
                    stuck.add(lane)
                    log.error("lane %s: %s", lane, state.detail)
                elif state.consuming and lane in stuck:
                    stuck.discard(lane)
                    log.warning("lane %s: consumed again (%s)", lane, state.detail)

    thread = threading.Thread(target=loop, name="lanes-liveness", daemon=True)
    thread.start()
    return thread


def consumed_lanes(consumer: object) -> list[str]:
    """The lanes a worker consumes (its ``-Q``; a lane's batch queue on RabbitMQ counts as
    the lane), from the consumer ``worker_ready`` sends; empty if it cannot tell."""
    task_consumer = getattr(consumer, "task_consumer", None)
    queues = getattr(task_consumer, "queues", None) or []
    return list(dict.fromkeys(lane_of(str(queue.name)) for queue in queues))
