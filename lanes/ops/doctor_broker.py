"""``lanes doctor`` with the queues on RabbitMQ (``broker.url``): how many of the cluster's
nodes answer (quorum queues need a majority), and is every lane's queue declared and
consumed. A deployment with its queues on Redis has no such rows."""

from __future__ import annotations

from typing import Any

from kombu.connection import Connection
from kombu.exceptions import OperationalError

from lanes.broker.amqp import DEAD_LETTERS, batch_queue, is_amqp, queue_counts
from lanes.kernel.config import Config
from lanes.ops.check import Check

_NODE_FIX = "start the RabbitMQ nodes that do not answer, or correct broker.url"


def broker_checks(config: Config, timeout_s: float) -> list[Check]:
    if not is_amqp(config) or config.broker.url is None:
        return []
    urls = [url.strip() for url in config.broker.url.split(";") if url.strip()]
    answers = {url: _server(url, timeout_s) for url in urls}
    rows = [_nodes_row(answers)]
    first = next((url for url, props in answers.items() if props is not None), None)
    if first is not None:
        rows.append(_queues_row(config, first, timeout_s))
    return rows


def _server(url: str, timeout_s: float) -> dict[str, Any] | None:
    """The node's server properties, or None when it does not answer."""
    connection = Connection(url, connect_timeout=timeout_s)
    try:
        connection.ensure_connection(max_retries=1, timeout=timeout_s)
        return dict(connection.connection.server_properties)
    except (OSError, OperationalError, *connection.connection_errors):
        return None
    finally:
        connection.release()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _nodes_row(answers: dict[str, dict[str, Any] | None]) -> Check:
    up = {url: props for url, props in answers.items() if props is not None}
    versions = sorted({_text(props.get("version", "?")) for props in up.values()})
    count = f"{len(up)} of {len(answers)} RabbitMQ nodes answer"
    away = [url for url, props in answers.items() if props is None]
    if not up or (len(answers) > 1 and 2 * len(up) <= len(answers)):
        return Check("broker", "fail", f"{count}: a quorum queue needs a majority of its nodes;"
                     f" away: {', '.join(away)}", _NODE_FIX)  # fmt: skip
    detail = f"{count} (RabbitMQ {', '.join(versions)})"
    if away:
        return Check("broker", "warn", f"{detail}; away: {', '.join(away)}", _NODE_FIX)
    return Check("broker", "ok", detail)


def _queues_row(config: Config, url: str, timeout_s: float) -> Check:
    """Every lane's queues declared and consumed; dead letters counted."""
    names = [*(q for lane in config.lanes() for q in (lane, batch_queue(lane))), DEAD_LETTERS]
    connection = Connection(url, connect_timeout=timeout_s)
    try:
        found = {name: queue_counts(connection, name) for name in names}
    finally:
        connection.release()
    return queues_verdict(config, found)


def queues_verdict(config: Config, found: dict[str, tuple[int, int] | None]) -> Check:
    missing = [lane for lane in config.lanes() if found.get(lane) is None]
    idle = [lane for lane in config.lanes()
            if config.instances[lane].enabled and (found.get(lane) or (0, 0))[1] == 0]  # fmt: skip
    dead = (found.get(DEAD_LETTERS) or (0, 0))[0]
    waiting = sum((found.get(name) or (0, 0))[0] for name in found if name != DEAD_LETTERS)
    problems = []
    if missing:
        problems.append(f"not declared yet: {', '.join(missing)} (a worker declares its lanes)")
    if idle:
        problems.append(f"no consumer: {', '.join(idle)}")
    if dead:
        problems.append(f"{dead} messages in {DEAD_LETTERS} (delivered too often)")
    if problems:
        fix = "start workers for those lanes (lanes worker LANE); read the dead letters"
        return Check("broker queues", "warn", f"{waiting} waiting; " + "; ".join(problems), fix)
    return Check("broker queues", "ok", f"every lane's queues consumed, {waiting} waiting")
