"""Batches of completion requests, shared by both APIs' batch endpoints.

A batch ends ``batch_delay_s`` after it was created: every request is then answered at
once, the way the synchronous endpoint would answer it, and billed at the batch rate. Nothing
runs in the background: a batch is brought up to date whenever it is read, under its
instance's lock. The per-minute limits and injected faults never apply to batches; a
``batch_error_rate`` share of the requests fails with a 500 instead.

A batch is processed whole at its due time, never in part: a cancel, or an expiry
(``batch_expire_s`` shorter than the delay), leaves every request unanswered or none. The
prompt cache plays no part in batches here, and batches stay in memory for the life of the
simulator, never archived.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lanes.sim.answers import compose
from lanes.sim.engine import (
    Call,
    Dialect,
    Injected,
    Outcome,
    Served,
    output_cap,
)
from lanes.sim.instances import InstanceState
from lanes.sim.profiles import Fault
from lanes.sim.prompt_cache import NO_USAGE
from lanes.sim.uploads import FileStore
from lanes.sim.wire import Reply

WallClock = Callable[[], float]
ResultKind = Literal["succeeded", "errored", "canceled", "expired"]
EndKind = Literal["done", "canceled", "expired", "failed"]
"""How a batch ended: processed, canceled, expired, or refused before processing."""

_SERVER_ERROR = Fault(kind="500")


@dataclass(frozen=True, slots=True)
class Pending:
    """One request as submitted: its validated call, or why its params are invalid."""

    custom_id: str
    call: Call | None
    invalid: str = ""


@dataclass(frozen=True, slots=True)
class Result:
    """One request's final answer; ``reply`` is the synchronous endpoint's reply, kept for
    ``succeeded`` and ``errored`` requests only."""

    custom_id: str
    kind: ResultKind
    reply: Reply | None = None


@dataclass(eq=False)
class Batch:
    """One batch. Times are Unix seconds; ``results`` is None until the batch ends."""

    id: str
    dialect: Dialect
    pending: tuple[Pending, ...]
    created_at: float
    due_at: float
    expires_at: float
    extra: dict[str, Any] = field(default_factory=dict)
    """What only one API keeps (input file, metadata, output files...)."""
    on_end: Callable[[Batch], None] | None = None
    """Called once, under the instance's lock, as the batch ends."""
    cancel_at: float | None = None
    ended_at: float | None = None
    end: EndKind | None = None
    results: list[Result] | None = None

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def tally(self) -> dict[ResultKind, int]:
        """Results by kind (all zero until the batch ends)."""
        counts: dict[ResultKind, int] = dict.fromkeys(
            ("succeeded", "errored", "canceled", "expired"), 0
        )
        for result in self.results or ():
            counts[result.kind] += 1
        return counts


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request to a batch or file endpoint. ``parts``: the path's segments after
    the API's prefix (``/v1/messages/batches``, ``/v1/batches``, ``/v1/files``);
    ``base_url``: ``http://host:port/{instance}`` as the client reached it."""

    method: str
    parts: tuple[str, ...]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    store: BatchStore
    base_url: str


def _draws_error(rate: float, rng: random.Random) -> bool:
    """Whether a request fails; draws from ``rng`` only for a rate strictly in (0, 1)."""
    if rate <= 0.0:
        return False
    return rate >= 1.0 or rng.random() < rate


def _outcome(state: InstanceState, call: Call, rng: random.Random) -> Outcome:
    """What the synchronous endpoint would serve, minus latency, limits and faults."""
    profile = state.profile
    cap = output_cap(call, profile)
    if not isinstance(cap, int):
        return cap
    if _draws_error(profile.batch_error_rate, rng):
        return Injected(_SERVER_ERROR, [])
    answer = compose(call.model, call.prompt, call.plan, cap)
    input_tokens, output_tokens = call.prompt.input_tokens, answer.output_tokens
    state.bill_batch(call.model, input_tokens, output_tokens)
    return Served(
        answer.text, input_tokens, output_tokens, answer.truncated, [], NO_USAGE, answer.tool_calls
    )


def answer(state: InstanceState, dialect: Dialect, pending: Pending, rng: random.Random) -> Result:
    """Process one request now."""
    if pending.call is None:
        return Result(pending.custom_id, "errored", dialect.error(400, pending.invalid))
    reply = dialect.render(_outcome(state, pending.call, rng), pending.call)
    kind: ResultKind = "succeeded" if reply.status == 200 else "errored"
    return Result(pending.custom_id, kind, reply)


class BatchStore:
    """One instance's batches and uploaded files. Thread-safe: one lock guards them all,
    and processing a batch holds it, so reads of the instance's batches wait meanwhile."""

    def __init__(self, state: InstanceState, rng: random.Random, clock: WallClock) -> None:
        self.state = state
        self.files = FileStore(clock)
        self._rng = rng
        self._clock = clock
        self._lock = threading.Lock()
        self._batches: dict[str, Batch] = {}

    def now(self) -> float:
        return self._clock()

    def create(
        self,
        batch_id: str,
        dialect: Dialect,
        pending: Sequence[Pending],
        *,
        extra: dict[str, Any] | None = None,
        on_end: Callable[[Batch], None] | None = None,
        refused: bool = False,
    ) -> Batch:
        """Record a new batch, timed by the instance's profile. ``refused``: it ends at once
        as ``failed`` without processing anything (an input file that did not validate)."""
        profile = self.state.profile
        now = self._clock()
        batch = Batch(
            id=batch_id,
            dialect=dialect,
            pending=tuple(pending),
            created_at=now,
            due_at=now + profile.batch_delay_s,
            expires_at=now + profile.batch_expire_s,
            extra=dict(extra or {}),
            on_end=on_end,
        )
        self.state.count_batch(len(batch.pending))
        with self._lock:
            self._batches[batch_id] = batch
            if refused:
                self._finish(batch, [], now, "failed")
        return batch

    def get(self, batch_id: str, dialect: Dialect) -> Batch | None:
        """The batch, brought up to date; None if unknown or of the other API."""
        with self._lock:
            batch = self._find(batch_id, dialect)
            if batch is not None:
                self._advance(batch)
            return batch

    def listing(self, dialect: Dialect) -> list[Batch]:
        """Every batch of ``dialect``, newest first, each brought up to date."""
        with self._lock:
            found = [b for b in reversed(self._batches.values()) if b.dialect is dialect]
            for batch in found:
                self._advance(batch)
            return found

    def cancel(self, batch_id: str, dialect: Dialect) -> Batch | None:
        """Ask to cancel: a batch not yet ended ends canceled at its next read."""
        with self._lock:
            batch = self._find(batch_id, dialect)
            if batch is None:
                return None
            self._advance(batch)
            if not batch.ended and batch.cancel_at is None:
                batch.cancel_at = self._clock()
            return batch

    def delete(self, batch_id: str, dialect: Dialect) -> Batch | None:
        """Forget an ended batch; a batch still running is returned and kept."""
        with self._lock:
            batch = self._find(batch_id, dialect)
            if batch is not None:
                self._advance(batch)
                if batch.ended:
                    del self._batches[batch_id]
            return batch

    def _find(self, batch_id: str, dialect: Dialect) -> Batch | None:
        batch = self._batches.get(batch_id)
        return batch if batch is not None and batch.dialect is dialect else None

    def _advance(self, batch: Batch) -> None:
        """End the batch if its time has come; hold the lock."""
        if batch.ended:
            return
        now = self._clock()
        if batch.cancel_at is not None:
            canceled = [Result(p.custom_id, "canceled") for p in batch.pending]
            self._finish(batch, canceled, now, "canceled")
        elif batch.due_at <= batch.expires_at and now >= batch.due_at:
            results = [answer(self.state, batch.dialect, p, self._rng) for p in batch.pending]
            self._finish(batch, results, batch.due_at, "done")
        elif now >= batch.expires_at:
            expired = [Result(p.custom_id, "expired") for p in batch.pending]
            self._finish(batch, expired, batch.expires_at, "expired")

    def _finish(self, batch: Batch, results: list[Result], at: float, end: EndKind) -> None:
        batch.results, batch.ended_at, batch.end = results, at, end
        if batch.on_end is not None:
            batch.on_end(batch)


class BatchBook:
    """Every instance's :class:`BatchStore`, made on first use. Outlives a server restart
    when the caller keeps it."""

    def __init__(self, clock: WallClock = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._stores: dict[str, BatchStore] = {}

    def store(self, state: InstanceState, rng: random.Random) -> BatchStore:
        with self._lock:
            found = self._stores.get(state.name)
            if found is None:
                found = self._stores[state.name] = BatchStore(state, rng, self._clock)
            return found
