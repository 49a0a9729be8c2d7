"""Where a benchmark's CPU goes, by the role of each process: this one (the caller), its
descendants (the simulator, the front door, the workers, told apart by their command lines)
and the Redis server (``INFO cpu``). Reads ``/proc``: outside Linux only Redis is counted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import redis

from lanes.bench.harness import parent_pids, process_cpu_s, redis_cpu_s

ROLES = (("simulator", " sim"), ("front door", " serve"), ("workers", "celery"))
"""A descendant's role: the first whose marker its command line holds; else ``other``."""


def _role(pid: int) -> str:
    try:
        line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "other"
    return next((role for role, marker in ROLES if marker in line), "other")


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for child, parent in parent_pids().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], list(children.get(pid, []))
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


@dataclass
class RoleMeter:
    """CPU seconds by role; :meth:`since` gives what each role spent after a snapshot."""

    redis: redis.Redis | None = None
    me: int = field(default_factory=os.getpid)

    def snapshot(self) -> dict[str, float]:
        totals = {"caller": process_cpu_s(self.me)}
        for pid in _descendants(self.me):
            role = _role(pid)
            totals[role] = totals.get(role, 0.0) + process_cpu_s(pid)
        if self.redis is not None:
            totals["redis"] = redis_cpu_s(self.redis)
        return totals

    def since(self, before: dict[str, float], per: int) -> dict[str, float]:
        """Milliseconds of CPU each role spent since ``before``, per one of ``per`` units."""
        after = self.snapshot()
        spent = {role: (after[role] - before.get(role, 0.0)) * 1000 / per for role in after}
        spent["total"] = sum(spent.values())
        return {role: round(ms, 2) for role, ms in sorted(spent.items())}
