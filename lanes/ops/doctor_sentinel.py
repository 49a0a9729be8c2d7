"""``lanes doctor`` behind Sentinel: does a quorum of sentinels agree on the primary, could
they fail over (``SENTINEL CKQUORUM``), and does the primary have a replica to fail over to.
A ``redis://`` deployment has no such rows."""

from __future__ import annotations

import contextlib
from typing import Any

import redis

from lanes.broker.sentinel import is_sentinel, parse_sentinel, sentinels
from lanes.kernel.config import Config
from lanes.ops.check import Check
from lanes.stores.scripts import text

_FIX = (
    "start the sentinels that do not answer, and check that each monitors "
    "redis_sentinel_master ({master}) with the same quorum"
)


def sentinel_checks(config: Config, url: str, timeout_s: float) -> list[Check]:
    if not is_sentinel(url):
        return []
    master = config.redis_sentinel_master
    nodes = parse_sentinel(url).nodes
    named: dict[str, tuple[str, int] | None] = {}
    quorum_ok, quorum_detail = False, "no sentinel answered"
    for (host, port), client in zip(nodes, sentinels(url, timeout_s=timeout_s).sentinels,
                                    strict=True):  # fmt: skip
        try:
            address: Any = client.sentinel_get_master_addr_by_name(master)
            named[f"{host}:{port}"] = (text(address[0]), int(address[1])) if address else None
            if not quorum_ok:
                quorum_ok, quorum_detail = _ckquorum(client, master)
        except (redis.RedisError, OSError):
            named[f"{host}:{port}"] = None
        finally:
            client.close()
    return [_agreement(master, named), Check("sentinel quorum", "ok" if quorum_ok else "fail",
            quorum_detail, "" if quorum_ok else _FIX.format(master=master)),
            _replicas(url, master, timeout_s)]  # fmt: skip


def _ckquorum(client: redis.Redis, master: str) -> tuple[bool, str]:
    try:
        client.sentinel_ckquorum(master)
    except redis.ResponseError as exc:
        return False, str(exc)
    return True, f"the sentinels can agree on a failover of {master!r} (SENTINEL CKQUORUM)"


def _agreement(master: str, named: dict[str, tuple[str, int] | None]) -> Check:
    answered = {node: addr for node, addr in named.items() if addr is not None}
    primaries = {f"{host}:{port}" for host, port in answered.values()}
    silent = sorted(set(named) - set(answered))
    detail = (f"{len(answered)} of {len(named)} sentinels name {master!r} at "
              f"{', '.join(sorted(primaries)) or 'nothing'}")  # fmt: skip
    if silent:
        detail += f"; no answer from {', '.join(silent)}"
    if len(primaries) != 1:
        return Check("sentinel primary", "fail", detail, _FIX.format(master=master))
    majority = len(answered) > len(named) // 2
    return Check("sentinel primary", "ok" if not silent else "warn" if majority else "fail",
                 detail, "" if not silent else _FIX.format(master=master))  # fmt: skip


def _replicas(url: str, master: str, timeout_s: float) -> Check:
    count = 0
    with contextlib.suppress(redis.RedisError, OSError):
        count = len(sentinels(url, timeout_s=timeout_s).discover_slaves(master))
    if count:
        return Check("sentinel replicas", "ok", f"{count} replica(s) to fail over to")
    detail = "the primary has no replica: losing it loses the jobs"
    fix = "start a replica (replicaof the primary) that the sentinels can promote"
    return Check("sentinel replicas", "fail", detail, fix)
