"""Where a shared prompt prefix is cached: the port.

A provider caches a prefix per account and per model, and only once the call that wrote it
has answered. lanes keeps, per (prefix digest, model): which instances hold it (until its TTL
would lapse), which instance the first job carrying it was sent to (so that the jobs of one
fan-out follow it there), and, per instance, the one job writing it now (a gate: the others
wait for its answer and then read, instead of all paying for the write).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol

PLAN_TTL_S = 120
"""How long the first placement of a prefix steers the jobs that follow it."""


class Gate(StrEnum):
    WARM = "warm"
    """The instance holds the prefix: call, and read it."""
    WRITE = "write"
    """This job writes it: call, then :meth:`PrefixStore.written`."""
    WAIT = "wait"
    """Another job is writing it on this instance right now: wait for its answer."""


class PrefixStore(Protocol):
    def place(self, digest: str, model: str, members: Sequence[str], choice: str) -> str:
        """The member of ``members`` to send a job with this prefix to: one that holds it or
        is writing it, else the one the prefix was first sent to, else ``choice`` (which the
        jobs after it then follow)."""

    def gate(self, digest: str, model: str, instance: str, job_id: str, lease_s: float) -> Gate:
        """Whether ``job_id`` may call ``instance`` now; :attr:`Gate.WRITE` makes it the
        writer for ``lease_s`` seconds at most."""

    def written(self, digest: str, model: str, instance: str, job_id: str, ttl_s: int) -> None:
        """``instance`` holds the prefix for ``ttl_s``; ``job_id``'s gate is lifted."""

    def release(self, digest: str, model: str, instance: str, job_id: str) -> None:
        """``job_id`` wrote nothing (its call failed): lift its gate."""
