"""The state of every job from submit to its one result: the port and its value types.

One home for what used to be three stores:

* **pending**: every unfinished job and the message that runs next (queue + envelope), so the
  janitor (:mod:`lanes.workers.services.janitor`) can re-send a message that no queue holds and no
  worker has; each hand-off (retry, wait, move, fallback) replaces the entry and marks the handing
  message's ``hop``, so a redelivered copy of it is dropped as stale;
* **results**: the first :class:`~lanes.broker.result.Result` recorded for a job stands; recording
  it ends the job's pending entry. It is stored once, where callers read it;
* **charges**: what each provider call cost, written once per (job, step, attempt), so a call
  repeated after a worker died is never billed twice;
* **calls**: how many provider calls each (job, step, attempt) started (:meth:`next_call`);
* **cancel marks**: a job its caller gave up on ends with the caller's failed result, and no
  provider call of it starts after that (:meth:`cancel`);
* **idempotency keys**: a caller's key → the job submitted under it;
* **id claims**: a job id belongs to the first payload submitted under it, so another caller
  cannot take over (or read) a job by reusing its id.

Implementations: :class:`lanes.stores.redis.jobs.RedisJobStore` (shared by every process) and
:class:`lanes.stores.memory.jobs.MemoryJobStore` (one process; tests). Both raise
:class:`lanes.kernel.errors.InfrastructureError` when their backing store is unreachable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any, NamedTuple, Protocol, TypedDict

from lanes.broker.result import Result


class PendingEntry(TypedDict):
    """The message a pending job waits on."""

    queue: str
    envelope: dict[str, Any]


class Claim(StrEnum):
    """What submitting a job id found."""

    NEW = "new"
    """The id was free: it now belongs to this payload, and the job is tracked."""
    SAME = "same"
    """This very job (same id, same payload) was submitted before: nothing to send."""
    CONFLICT = "conflict"
    """The id belongs to a job with another payload: refuse."""
    KEY_SAME = "key-same"
    """The idempotency key is held by an earlier job with the same payload: that job stands."""
    KEY_CONFLICT = "key-conflict"
    """The idempotency key is held by an earlier job with another payload: refuse."""


class Tracked(NamedTuple):
    """What :meth:`JobStore.track` found, and the job it found: this one, or the earlier job
    holding the idempotency key (:attr:`Claim.KEY_SAME`, :attr:`Claim.KEY_CONFLICT`)."""

    claim: Claim
    job_id: str


class Cancelled(NamedTuple):
    """What :meth:`JobStore.cancel` did to one job."""

    job_id: str
    ended: bool
    """The cancel's result stands; False when the job had already ended."""
    calls: int
    """Provider calls the job had started before the cancel: billed, or still running."""


class JobStore(Protocol):
    # -- submit ---------------------------------------------------------------------------
    def track(
        self,
        job_id: str,
        fingerprint: str,
        queue: str,
        envelope: dict[str, Any],
        idempotency_key: str | None = None,
    ) -> Tracked:
        """In one step: claim ``job_id`` (and ``idempotency_key``, if given) for the payload
        ``fingerprint`` and track the job's first message to ``queue``. A key already held
        wins over everything else; nothing changes unless the claim is :attr:`Claim.NEW`."""
        ...

    def untrack(self, job_id: str, idempotency_key: str | None = None) -> None:
        """Drop the entry, the id claim and (while this job holds it) the idempotency key of a
        job that never made it onto a queue, in one step."""
        ...

    # -- a worker's step ----------------------------------------------------------------------
    def hand_on(self, job_id: str, hop: int, queue: str, envelope: dict[str, Any]) -> bool:
        """Message ``hop`` handed the job on to ``envelope`` on ``queue``; False if a later
        hop already did (this hand-off is stale)."""
        ...

    def is_stale(self, job_id: str, hop: int) -> bool:
        """Whether a message at ``hop`` was already handed on (a redelivered older copy)."""
        ...

    def result(self, job_id: str) -> Result | None:
        """The recorded result of ``job_id``, if any."""
        ...

    def record(self, result: Result) -> Result:
        """Record ``result`` unless the job already has one, end its pending entry; return
        the result that stands."""
        ...

    def announce(self, results: Sequence[Result]) -> None:
        """Wake the waiters of recorded ``results`` where recording did not (a store that
        waits for a replica first); again for a job whose earlier run may have died between
        its record and its announcement."""
        ...

    def charge(self, job_id: str, step: int, attempt: int, cost_usd: float) -> bool:
        """Charge call (job, step, attempt); False when that call was already charged."""
        ...

    def charges(self, job_id: str) -> dict[str, float]:
        """Every charge of ``job_id`` by ``"step:attempt"``."""
        ...

    def next_call(self, job_id: str, step: int, attempt: int) -> int:
        """Number the provider call about to start for (job, step, attempt): 1, then 2 for a
        call repeated after its worker died mid-call, and so on; 0 when the job was cancelled
        (no call may start). The ledger keeps one row per call, because the provider bills
        each one."""
        ...

    # -- callers --------------------------------------------------------------------------------
    def results(self, job_ids: Sequence[str]) -> list[Result | None]:
        """The recorded results of ``job_ids``, in order, in one read."""
        ...

    def waiting_on(self, job_ids: Sequence[str]) -> dict[str, str]:
        """The queue (lane) each of ``job_ids`` waits on: that of its next message. Jobs that
        are not pending (ended, or never tracked) are left out."""
        ...

    def backlog(self) -> dict[str, int]:
        """Unfinished jobs by the lane (queue) of their next message; lanes with none are
        left out."""
        ...

    def cancel(self, failures: Sequence[Result]) -> list[Cancelled]:
        """Give up on jobs: each of ``failures`` (a failed result saying why) is recorded
        unless its job already ended, and the job is marked so that no provider call of it
        starts from now on. A call already running finishes and is billed."""
        ...

    # -- the janitor ----------------------------------------------------------------------------
    def quiet_since(self, cutoff_s: float) -> dict[str, PendingEntry]:
        """Pending jobs whose entry has not changed since ``cutoff_s`` (store time)."""
        ...

    def touch(self, job_ids: Iterable[str], now_s: float) -> None:
        """Mark jobs as seen alive at store time ``now_s``."""
        ...

    def now_s(self) -> float:
        """The store's clock, epoch seconds (Redis: server ``TIME``)."""
        ...
