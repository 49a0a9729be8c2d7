"""Whether the ledger's drainers run and keep up, as ``lanes doctor``, ``lanes status`` and
the metrics report it.

Each drainer process beats after every round (and between the batches of a long one): its
``host:pid`` goes into :meth:`~lanes.stores.keys.Keys.ledger_drainers` with the Redis server time as
score, so hosts' clocks do not matter. A round that fails records why in
:meth:`~lanes.stores.keys.Keys.ledger_health` (the next good round, in any drainer, removes it); a
worker that replaces a dead drainer counts it there too. A drainer is *running* while it beat
within :func:`stale_after_s`.
"""

from __future__ import annotations

import json
import math
import os
import socket
from dataclasses import asdict, dataclass
from typing import Any, Literal

import redis

from lanes.stores.keys import Keys
from lanes.stores.scripts import redis_errors, server_time_s, text

STALE_MIN_S = 30.0
"""A drainer silent for this long (or ten flush intervals, if longer) is not running."""
RESTART_SHOWN_S = 3600.0
"""How long a replaced drainer stays worth a warning."""

Verdict = Literal["ok", "warn", "fail"]


def stale_after_s(flush_interval_s: float) -> float:
    """How long a drainer may stay silent and still count as running."""
    return max(STALE_MIN_S, 10 * flush_interval_s)


def drainer_name() -> str:
    """This process as the drainers' set names it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _now(client: redis.Redis) -> float:
    return server_time_s(*client.time())


def beat(client: redis.Redis, keys: Keys, name: str, stale_s: float, error: str | None) -> None:
    """Drainer ``name`` finished a round now: ``error`` None (it worked: any recorded failure
    is over) or why it failed. Members silent for long are dropped on the way."""
    key = keys.ledger_drainers()
    with redis_errors("recording a ledger drainer's heartbeat"):
        now = _now(client)
        with client.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {name: now})
            pipe.zremrangebyscore(key, "-inf", now - 4 * stale_s)
            pipe.expire(key, math.ceil(4 * stale_s))
            if error is None:
                pipe.hdel(keys.ledger_health(), "error")
            else:
                record = {"at": now, "drainer": name, "error": error[:500]}
                pipe.hset(keys.ledger_health(), "error", json.dumps(record))
            pipe.execute()


def leave(client: redis.Redis, keys: Keys, name: str) -> None:
    """Drainer ``name`` stops on purpose (its worker shuts down)."""
    with redis_errors("recording a ledger drainer leaving"):
        client.zrem(keys.ledger_drainers(), name)


def record_restart(client: redis.Redis, keys: Keys, name: str, exitcode: int | None) -> int:
    """A worker replaced its drainer ``name``, which exited with ``exitcode``; the number of
    replacements recorded in this deployment so far."""
    with redis_errors("recording a ledger drainer restart"):
        now = _now(client)
        record = {"at": now, "drainer": name, "exitcode": exitcode}
        with client.pipeline(transaction=False) as pipe:
            pipe.hincrby(keys.ledger_health(), "restarts", 1)
            pipe.hset(keys.ledger_health(), "restarted", json.dumps(record))
            count, _ = pipe.execute()
    return int(count)


@dataclass(frozen=True)
class LedgerHealth:
    """What Redis says about the drainers: those running, the events waiting for them, the
    last failed round (``error``, with ``age_s``) and replaced drainers."""

    drainers: list[str]
    backlog: int
    error: dict[str, Any] | None
    restarts: int
    restarted: dict[str, Any] | None

    def verdict(self) -> tuple[Verdict, str, str]:
        """(status, detail, fix) for a person: see :func:`verdict`."""
        return verdict(self)

    def to_json(self) -> dict[str, Any]:
        status, detail, fix = self.verdict()
        return {**asdict(self), "status": status, "detail": detail, "fix": fix}


def ledger_health(client: redis.Redis, keys: Keys, stale_s: float) -> LedgerHealth:
    """The drainers' health, in one round trip."""
    reading = redis_errors("reading the ledger drainers' health")
    with reading, client.pipeline(transaction=False) as pipe:
        pipe.time()
        pipe.zrange(keys.ledger_drainers(), 0, -1, withscores=True)
        pipe.llen(keys.ledger_events())
        pipe.hgetall(keys.ledger_health())
        now_raw, members, backlog, health = pipe.execute()
    now = server_time_s(*now_raw)
    running = sorted(text(name) for name, at in members if now - float(at) <= stale_s)
    found = {text(k): text(v) for k, v in health.items()}
    return LedgerHealth(
        drainers=running,
        backlog=int(backlog),
        error=_aged(found.get("error"), now),
        restarts=int(found.get("restarts") or 0),
        restarted=_aged(found.get("restarted"), now),
    )


def _aged(raw: str | None, now: float) -> dict[str, Any] | None:
    """A JSON record with ``age_s`` added (None when absent or unreadable)."""
    if raw is None:
        return None
    try:
        record = json.loads(raw)
        return {**record, "age_s": round(now - float(record["at"]), 1)}
    except (ValueError, TypeError, KeyError):
        return None


_START_FIX = (
    "start a worker (lanes up, or lanes worker LANE): each worker runs a drainer; if workers "
    "run, look for 'ledger' lines in their logs"
)


def verdict(health: LedgerHealth) -> tuple[Verdict, str, str]:
    """(status, detail, fix): ``fail`` when events wait and no drainer runs (outcomes and
    costs are not being recorded); ``warn`` when no drainer runs, a round failed, or a drainer
    died and was replaced within the last hour; ``ok`` otherwise."""
    waiting = f"{health.backlog} ledger event(s) waiting in Redis"
    if not health.drainers:
        if health.backlog:
            detail = f"{waiting} and no drainer running: outcomes and costs are not recorded"
            return "fail", detail, _START_FIX
        return "warn", "no ledger drainer running (nothing waiting yet)", _START_FIX
    running = f"{len(health.drainers)} drainer(s) running ({', '.join(health.drainers)}); {waiting}"
    if health.error is not None:
        detail = f"{running}; the last round failed {health.error['age_s']:g} s ago: "
        fix = "fix what the error names; the events wait in Redis meanwhile, nothing is lost"
        return "warn", detail + str(health.error["error"]), fix
    restarted = health.restarted
    if restarted is not None and restarted["age_s"] <= RESTART_SHOWN_S:
        detail = (
            f"{running}; drainer {restarted['drainer']} died (exit code {restarted['exitcode']})"
            f" {restarted['age_s']:g} s ago and was replaced ({health.restarts} replaced so far)"
        )
        return "warn", detail, "look for the cause in that worker's log (lines with 'ledger')"
    return "ok", running, ""
