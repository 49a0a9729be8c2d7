"""Jobs parked for a provider batch, and the open batches: the port.

A worker *parks* a job whose step goes through its lane's batch API: its message, the call
number it was charged under and its size, under the job's id (once: parking twice is a
no-op). A batcher *takes* the parked jobs of one (instance, model) into a batch record, then
records the provider's batch id once it submitted them. Everything a batcher needs to carry
on after a crash is here: whichever process looks next finds the open batches and their
members, submitted or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Parked:
    envelope: dict[str, Any]
    """The job's message (:meth:`lanes.broker.message.Envelope.to_wire`)."""
    call: int
    """The call number the job's batched request was charged under."""
    withdrawn: bool = False
    """Taken out of its batch (run as a call): a late answer from the batch is dropped."""


@dataclass(frozen=True)
class OpenBatch:
    batch_id: str
    instance: str
    model: str
    created_at: float
    members: list[str] = field(default_factory=list)
    provider_id: str | None = None
    """None until the submission is recorded."""
    custom_ids: dict[str, str] = field(default_factory=dict)
    """custom id -> job id."""


class BatchStore(Protocol):
    def park(self, instance: str, model: str, job_id: str, parked: Parked, size: int,
             now_s: float) -> bool:  # fmt: skip
        """Park ``job_id`` to be batched; False if it already is (nothing changes)."""

    def take(self, instance: str, model: str, batch_id: str, *, most: int, most_bytes: int,
             window_s: float, now_s: float) -> list[str]:  # fmt: skip
        """Move the jobs waiting on (instance, model) into a new open batch ``batch_id`` when
        the oldest waited ``window_s`` or ``most`` are waiting; the ids taken (may be none)."""

    def submitted(self, batch_id: str, provider_id: str, custom_ids: dict[str, str]) -> None: ...

    def open_batches(self) -> list[OpenBatch]: ...

    def waiting(self, lanes: Sequence[tuple[str, str]]) -> list[int]:
        """Jobs parked on each (instance, model) of ``lanes`` and not in a batch yet."""

    def member(self, job_id: str) -> Parked | None: ...

    def members(self, job_ids: Sequence[str]) -> list[Parked | None]:
        """:meth:`member` of each of ``job_ids``, in order, in one read."""

    def withdraw(self, job_id: str) -> None:
        """Mark the member withdrawn (it keeps its place in the batch record)."""

    def forget(self, job_ids: Sequence[str]) -> None:
        """The members are settled: their answer recorded, or handed back to the queue."""

    def close(self, batch_id: str) -> None:
        """The batch is done with (every member forgotten first)."""

    def lock(self, name: str, ttl_s: float) -> bool:
        """Take the lock ``name`` for ``ttl_s`` (one process gathers or polls a batch)."""

    def unlock(self, name: str) -> None: ...

    def parked_ids(self) -> set[str]:
        """Every parked job id (the janitor counts them as held)."""
