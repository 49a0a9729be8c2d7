"""The liveness canary: is every lane consumed, not merely connected to?

A Celery worker on Redis can stay connected (it answers ``inspect``, sends heartbeats) yet stop
taking messages from its queue, typically after a reconnect. Only a message that goes through
the queue tells. So every worker sends, every ``liveness.interval_s``, a tiny ``lanes.canary``
message down each of its lanes; whichever worker takes it marks the lane ``seen``.

Per lane, Redis keeps (:meth:`lanes.stores.keys.Keys.canary`) ``sent``, the server time of the
oldest canary not yet taken (``HSETNX``: later canaries do not move it), and ``seen``, when one was
last taken (which clears ``sent``). A lane is **not consuming** when a canary has waited longer
than ``liveness.timeout_s`` and no job finished on the lane since it was sent (a lane busy with
a backlog finishes jobs, so its canary may queue behind them without a false alarm; the
health hash's ``ts_ms`` says when the lane's last call ended).

Whoever reads it (``lanes status``, the metrics, each worker's log) judges with Redis time, so
the hosts' clocks do not matter.

Canaries are housekeeping, not work: they are sent without a ``task-sent`` event and their
task sends no worker event (``send_events=False``), so Flower never lists them among the tasks.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery
from kombu.utils.uuid import uuid

from lanes.broker.message import send_message
from lanes.kernel.errors import InfrastructureError
from lanes.stores.keys import Keys

log = logging.getLogger("lanes.liveness")

CANARY_TASK = "lanes.canary"
CANARY_EXPIRES_S = 600.0
"""A canary still queued after this long is dropped unread (it has done its job by then)."""


@dataclass(frozen=True)
class Liveness:
    lane: str
    consuming: bool | None
    """True: a canary went through; False: one is stuck (see the module); None: no canary
    was ever sent (no worker has served the lane since its keys were made)."""
    detail: str
    waiting_s: float = 0.0
    """How long the oldest untaken canary has waited (0: none waits)."""


def server_time_s(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return float(seconds) + float(micros) / 1e6


def send_canaries(app: Celery, client: redis.Redis, keys: Keys, lanes: list[str]) -> None:
    """One canary down each lane, and the oldest outstanding send time kept."""
    now = server_time_s(client)
    for lane in lanes:
        client.hsetnx(keys.canary(lane), "sent", repr(now))
        message = app.amqp.create_task_message(
            uuid(), CANARY_TASK, [lane], {}, expires=CANARY_EXPIRES_S, ignore_result=True,
            argsrepr=f"lane={lane}", kwargsrepr="{}", create_sent_event=False,
        )  # fmt: skip
        send_message(app, CANARY_TASK, lane, message)


def took_canary(client: redis.Redis, keys: Keys, lane: str) -> None:
    """A worker took a canary of ``lane``: the lane is consumed."""
    now = server_time_s(client)
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(keys.canary(lane), "seen", repr(now))
        pipe.hdel(keys.canary(lane), "sent")
        pipe.execute()


def liveness(client: redis.Redis, keys: Keys, lanes: list[str], timeout_s: float) -> dict[
    str, Liveness
]:  # fmt: skip
    """Each lane's liveness now; InfrastructureError if Redis cannot be read."""
    try:
        now = server_time_s(client)
        with client.pipeline(transaction=False) as pipe:
            for lane in lanes:
                pipe.hmget(keys.canary(lane), ["sent", "seen"])
                pipe.hget(keys.health(lane), "ts_ms")
            replies = pipe.execute()
    except redis.RedisError as exc:
        raise InfrastructureError(f"cannot read the liveness canaries: {exc}") from exc
    found = {}
    for i, lane in enumerate(lanes):
        (sent, seen), last_ms = replies[2 * i], replies[2 * i + 1]
        found[lane] = judge(lane, now, _num(sent), _num(seen), _num(last_ms), timeout_s)
    return found


def _num(value: Any) -> float | None:
    return float(value) if value is not None else None


def judge(
    lane: str,
    now: float,
    sent: float | None,
    seen: float | None,
    last_outcome_ms: float | None,
    timeout_s: float,
) -> Liveness:
    """The rule of the module, on one lane's readings (server seconds)."""
    if sent is None:
        if seen is None:
            return Liveness(lane, None, "no canary sent yet (no worker has served this lane)")
        return Liveness(lane, True, f"canary taken {now - seen:.0f}s ago")
    waited = now - sent
    finished_since = last_outcome_ms is not None and last_outcome_ms / 1000 >= sent
    if waited <= timeout_s or finished_since:
        return Liveness(lane, True, f"canary waiting {waited:.0f}s; jobs finishing", waited)
    return Liveness(
        lane, False,
        f"not consuming: a canary has waited {waited:.0f}s (liveness.timeout_s {timeout_s:g})"
        " and no job finished on the lane since; restart its worker",
        waited,
    )  # fmt: skip


def record_clock(client: redis.Redis, keys: Keys, host: str | None = None) -> None:
    """This host's clock beside Redis's, for ``lanes doctor``'s skew check."""
    before = time.time()
    redis_now = server_time_s(client)
    local = (before + time.time()) / 2
    payload = json.dumps({"local": local, "redis": redis_now})
    client.hset(keys.clocks(), host or socket.gethostname(), payload)
