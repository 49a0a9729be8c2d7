"""The ledger: what lanes did and what it cost, durably. Its events and its two ports.

Workers and dispatchers never write the database on a job's path. They hand each event off
to a :class:`LedgerSink` (Redis: one ``RPUSH`` in the same round trip as the writes it goes
with, so an event is as durable as the result it describes); a drainer
(:mod:`lanes.workers.services.ledger_drain`) moves batches of them into the :class:`Ledger` (SQL).
Every event carries its own identity, and the ledger applies each one at most once, so replaying a
batch (a drainer that died between the database commit and trimming the queue) or
re-sending an event (a redelivered job) records nothing twice.

====================  =========================================  =========================
event                 identity                                   table
====================  =========================================  =========================
``DecisionEvent``     job                                        ``routing_decisions``
``CallEvent``         (job, step, attempt, call)                 ``cost_tracking``
``CostEvent``         (job, step, attempt, call)                 ``cost_tracking`` (settles)
``RateLimitEvent``    (job, step, attempt, call)                 ``rate_limit_events``
``OutcomeEvent``      job (its fallbacks: (job, to_step))        ``routing_outcomes``,
                                                                 ``fallback_events``,
                                                                 ``model_performance``
====================  =========================================  =========================

``call`` numbers the provider calls of one (job, step, attempt): a worker killed mid-call
leaves a call that started and never settled; the redelivered message makes call 2. Both
were billed by the provider, so both are in ``cost_tracking``: the first at its reservation
(``settled`` false), the second at its real cost.

The ledger also keeps the API keys lanes issues (:class:`KeyStore`): by their SHA-256 digest,
never in plaintext.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from lanes.kernel.errors import JobError


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: str
    at: float = Field(default_factory=time.time)
    """Epoch seconds when it happened."""
    project: str | None = None
    user: str | None = None


class DecisionEvent(_Event):
    kind: Literal["decision"] = "decision"
    instance: str
    """The first step's instance (a pool is expanded to the member that got the job)."""
    model: str
    strategy: str
    task_type: str
    complexity: str
    vital: bool
    difficulty: float
    estimated_cost_usd: float
    reasons: list[str] = Field(default_factory=list)
    prompt: str | None = None
    """Only with ``ledger.store_text``."""


class _CallId(_Event):
    instance: str
    model: str
    step: int = Field(ge=0)
    attempt: int = Field(ge=0)
    call: int = Field(ge=1)
    task_type: str = ""


class CallEvent(_CallId):
    """A provider call started: it counts as spent at ``reserved_usd`` until it settles."""

    kind: Literal["call"] = "call"
    reserved_usd: float = Field(ge=0)


class CostEvent(_CallId):
    """A provider call ended: what it really cost (0 for an error the provider does not
    bill)."""

    kind: Literal["cost"] = "cost"
    cost_usd: float = Field(ge=0)
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    ok: bool = True


class RateLimitEvent(_CallId):
    kind: Literal["rate_limit"] = "rate_limit"
    cooldown_s: float = Field(ge=0)
    reason: str


class FallbackRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    to_step: int = Field(ge=1)
    from_instance: str
    from_model: str
    to_instance: str
    reason: str


class OutcomeEvent(_Event):
    """How a job ended (once per job)."""

    kind: Literal["outcome"] = "outcome"
    status: Literal["ok", "failed"]
    instance: str
    model: str
    step: int = Field(ge=0)
    attempt: int = Field(ge=0)
    task_type: str = ""
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    latency_s: float = Field(default=0.0, ge=0)
    waited_s: float = Field(default=0.0, ge=0)
    fallbacks: list[FallbackRow] = Field(default_factory=list)
    cached: bool = False
    """Answered from the response cache: no provider call, ``cost_saved_usd`` saved."""
    cost_saved_usd: float = Field(default=0.0, ge=0)
    batched: bool = False
    """Answered through the provider's batch API, at its batch rate."""
    batch_saved_usd: float = 0.0
    """What the batch rate took off the price."""
    prompt_cache_saved_usd: float = 0.0
    """What the prompt cache took off the price: its reads' discount less its writes'
    premium (negative for a write nobody read)."""
    error: str | None = None
    output: str | None = None
    """Only with ``ledger.store_text``."""


LedgerEvent = Annotated[
    DecisionEvent | CallEvent | CostEvent | RateLimitEvent | OutcomeEvent,
    Field(discriminator="kind"),
]
EVENTS: TypeAdapter[LedgerEvent] = TypeAdapter(LedgerEvent)


def event_json(event: LedgerEvent) -> str:
    return event.model_dump_json()


def parse_event(raw: str | bytes) -> LedgerEvent:
    return EVENTS.validate_json(raw)


class LedgerSink(Protocol):
    """Where a job's path hands events off: fast and durable, never the database."""

    def emit(self, events: Sequence[LedgerEvent]) -> None: ...


class LedgerQueue(LedgerSink, Protocol):
    """The hand-off queue as its drainer sees it (oldest first)."""

    def oldest(self, count: int) -> list[str]:
        """Up to ``count`` of the oldest events, as JSON, without removing them."""
        ...

    def drop_oldest(self, count: int) -> None: ...

    def backlog(self) -> int: ...

    def lock(self, ttl_s: float) -> str | None:
        """A token when this process may drain now (nobody else does), else None."""
        ...

    def unlock(self, token: str) -> None: ...


class PerformanceRow(BaseModel):
    """What the ledger learned about one (instance, model, task type), decayed to
    ``updated_at``: ``samples`` and ``successes`` are decayed counts."""

    model_config = ConfigDict(frozen=True)

    instance: str
    model: str
    task_type: str
    samples: float
    successes: float
    latency_s: float
    cost_usd: float
    ratings: float
    rating: float | None
    """Mean rating 1-5 (decayed weights), None before any rating."""
    updated_at: float


class Discounts(BaseModel):
    """What the providers' discounts took off the spend over a period."""

    model_config = ConfigDict(frozen=True)

    batched_jobs: int = 0
    batch_saved_usd: float = 0.0
    prompt_cache_saved_usd: float = 0.0


class CostLine(BaseModel):
    """Spend of one group (a model, instance, project or task type) over a period."""

    model_config = ConfigDict(frozen=True)

    key: str
    calls: int
    cost_usd: float
    """Settled costs plus unsettled calls at their reservation."""
    unsettled_usd: float
    """The part of ``cost_usd`` that is reservations of calls that never settled."""
    saved_usd: float = 0.0
    """Cost saved by cache hits in this group."""


class Unsettled(BaseModel):
    """Calls that started and never settled (their worker died mid-call)."""

    model_config = ConfigDict(frozen=True)

    calls: int
    reserved_usd: float


class LaneStats(BaseModel):
    """How one (instance, model) did over a period."""

    model_config = ConfigDict(frozen=True)

    instance: str
    model: str
    decisions: int
    """Jobs first routed here."""
    outcomes: int
    """Jobs that ended here."""
    ok: int
    success_rate: float | None
    """``ok`` / ``outcomes``; None while no job ended here (no rate to speak of)."""
    p50_latency_s: float | None
    """None, as the 95th percentile, while no job ended here."""
    p95_latency_s: float | None
    fallbacks: int
    """Fallbacks away from this (instance, model)."""
    fallback_rate: float
    """``fallbacks`` / jobs that ran a step here (decided here, or fell back to here)."""
    rate_limits: int
    cost_usd: float


class FallbackRate(BaseModel):
    """One fallback edge: jobs that left ``from_instance``/``from_model`` for ``to_instance``."""

    model_config = ConfigDict(frozen=True)

    from_instance: str
    from_model: str
    to_instance: str
    count: int
    rate: float
    """``count`` / jobs that ran a step on ``from_instance``/``from_model``."""
    last_reason: str


class TaskOutcome(BaseModel):
    """Outcomes of one task type on one (instance, model), vital work apart: what downgrade
    advice reads."""

    model_config = ConfigDict(frozen=True)

    task_type: str
    instance: str
    model: str
    vital: bool = False
    jobs: int
    success_rate: float
    rating: float | None
    avg_cost_usd: float
    cost_usd: float


class BudgetLimitRow(BaseModel):
    """A limit set with ``lanes budget --set-*``; it overrides the config's."""

    model_config = ConfigDict(frozen=True)

    budget_id: str
    scope: str
    name: str | None
    period: str
    limit_usd: float
    updated_at: float


# -- API keys ----------------------------------------------------------------------------------
KEY_PREFIX = "lanes-"
"""How every key lanes issues starts: ``lanes-`` and 43 URL-safe characters (256 random bits)."""
KEY_ID_PREFIX = "key_"
"""How every key's public id starts: ``key_`` and 12 hex digits."""
KEY_ID = re.compile(rf"{KEY_ID_PREFIX}[0-9a-f]{{12}}")
"""A key's id, whole (``fullmatch``)."""
MAX_KEY_CHARS = 128
"""Longer text is no key lanes issued: it is refused before it is hashed or looked up."""
MAX_OWNER_CHARS = 128
"""The longest project, user or label a key takes (a job's ``project`` and ``user`` too)."""


class IssuedKey(BaseModel):
    """A key just issued: the only time its plaintext exists outside the caller's hands."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    key: str
    project: str
    user: str | None
    name: str | None
    created_at: float
    """Epoch seconds."""


class KeyOwner(BaseModel):
    """Whom a live key speaks for: what a request made with it is billed and budgeted to."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    project: str
    user: str | None


class KeyRow(BaseModel):
    """One issued key as it may be shown: never the key, never its digest."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    project: str
    user: str | None
    name: str | None
    last4: str
    """The key's last four characters, to tell keys apart."""
    created_at: float
    revoked_at: float | None
    """Epoch seconds; None while the key authenticates."""


def new_key() -> str:
    """A fresh key: :data:`KEY_PREFIX` and 256 bits from :mod:`secrets`."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return KEY_ID_PREFIX + secrets.token_hex(6)


def key_digest(key: str) -> str | None:
    """The SHA-256 hex digest a key is stored and looked up by; None for text that cannot be a
    key lanes issued (wrong prefix, too long, not ASCII), which matches nothing.

    A plain, fast hash is enough: a key carries 256 random bits, so nobody can guess one from
    its digest however many they try per second; slow password hashes (bcrypt, scrypt) exist
    for low-entropy secrets and would only slow down every request."""
    if not key.startswith(KEY_PREFIX) or len(key) > MAX_KEY_CHARS or not key.isascii():
        return None
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def same_digest(stored: str, given: str) -> bool:
    """Whether two digests are equal, compared in constant time."""
    return hmac.compare_digest(stored.encode("ascii"), given.encode("ascii"))


def check_key_owner(project: str, user: str | None, name: str | None) -> None:
    """:class:`~lanes.kernel.errors.JobError` (exit 2) unless ``project`` and, when given,
    ``user`` and ``name`` are 1 to :data:`MAX_OWNER_CHARS` characters of UTF-8 text without
    control characters."""
    _check_owner_text("project", project)
    for what, value in (("user", user), ("name", name)):
        if value is not None:
            _check_owner_text(what, value)


def _check_owner_text(what: str, value: str) -> None:
    if not value.strip():
        raise JobError(
            f"a key's {what} may not be empty or blank; give one with a visible character"
        )
    if len(value) > MAX_OWNER_CHARS:
        raise JobError(
            f"a key's {what} is {len(value)} characters long; give at most {MAX_OWNER_CHARS}"
        )
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise JobError(f"a key's {what} {value!r} holds control characters; give printable text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise JobError(f"a key's {what} {value!r} is not UTF-8 text; give valid text") from None


class KeyStore(Protocol):
    """The keys callers of the HTTP front door authenticate with, each mapped to a project (and
    a user). Only a key's SHA-256 digest is kept (:func:`key_digest`); its plaintext is handed
    out once, by :meth:`create_key`."""

    def create_key(self, project: str, user: str | None, name: str | None, at: float) -> IssuedKey:
        """Issue a key for ``project`` (and ``user``), labelled ``name``, at ``at`` (epoch
        seconds); JobError (exit 2) for an owner :func:`check_key_owner` refuses."""
        ...

    def key_owner(self, key: str) -> KeyOwner | None:
        """Whom ``key`` speaks for; None for a key that is unknown, malformed or revoked."""
        ...

    def keys(self) -> list[KeyRow]:
        """Every key issued, revoked ones included, oldest first."""
        ...

    def revoke_key(self, key_id: str, at: float) -> bool:
        """Stop ``key_id`` from authenticating from ``at`` on: True when such a key exists
        (revoked now, or already: its first revocation time is kept), False otherwise."""
        ...


class Ledger(KeyStore, Protocol):
    """The durable truth (SQL). Writes are idempotent per event identity."""

    def write(self, events: Sequence[LedgerEvent]) -> int:
        """Apply a batch in one transaction; returns the rows it inserted or settled."""
        ...

    def rate(self, job_id: str, rating: int, at: float) -> None:
        """Record a 1-5 rating for a finished job; JobError for an unknown job id."""
        ...

    def performance(self) -> list[PerformanceRow]: ...

    def spend_since(self, since: datetime, **where: Any) -> float:
        """USD spent since ``since`` (calls that never settled count at their reservation),
        filtered by ``instance``, ``project`` or ``user`` when given."""
        ...

    def unsettled_since(self, since: datetime) -> Unsettled:
        """Calls started since ``since`` that never settled, and their reservations."""
        ...

    # -- reports -----------------------------------------------------------------------------
    def costs(self, since: datetime, by: str) -> list[CostLine]:
        """Spend since ``since`` grouped ``by`` ``model``, ``instance``, ``project`` or
        ``task-type`` (largest first)."""
        ...

    def discounts(self, since: datetime) -> Discounts:
        """What the batch API and the prompt cache saved since ``since``."""
        ...

    def stats(self, since: datetime) -> list[LaneStats]: ...

    def fallback_rates(self, since: datetime) -> list[FallbackRate]: ...

    def task_outcomes(self, since: datetime) -> list[TaskOutcome]: ...

    def export(self, since: datetime) -> list[dict[str, Any]]:
        """One plain row per job that ended since ``since``: its outcome with its decision."""
        ...

    # -- budgets and resets -------------------------------------------------------------------
    def budget_limits(self) -> list[BudgetLimitRow]: ...

    def set_budget_limit(self, row: BudgetLimitRow) -> None: ...

    def reset_stats(self) -> None:
        """Forget decisions, outcomes, events and learned performance; keep costs (spend is
        what budgets are rebuilt from)."""
        ...

    def close(self) -> None: ...
