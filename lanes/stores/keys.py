"""Every Redis key lanes uses, in one place.

Keys that belong to one instance carry a ``{instance}`` hash tag so that every key a Lua
script touches for that instance lives in one Redis Cluster slot. ``prefix`` lets tests (and
several deployments on one Redis) keep apart; it comes from the config's ``redis_prefix``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lanes.broker.app import batch_list, celery_prefix


@dataclass(frozen=True)
class Keys:
    prefix: str

    # -- dispatch ---------------------------------------------------------------------------
    def pool_counter(self, pool: str) -> str:
        """INCR counter behind a global rotation (a pool, or the round_robin strategy)."""
        return f"{self.prefix}:rr:{pool}"

    def idempotency(self, key: str) -> str:
        """Job id already submitted under a caller's idempotency key."""
        return f"{self.prefix}:{{jobs}}:idem:{key}"

    # -- Celery's own keys -------------------------------------------------------------------
    @property
    def celery(self) -> str:
        """The start of every key Celery and kombu write
        (:func:`lanes.broker.app.celery_prefix`)."""
        return celery_prefix(self.prefix)

    def queue(self, lane: str) -> str:
        """The Redis list behind a lane's Celery queue: its interactive messages."""
        return f"{self.celery}{lane}"

    def queue_lists(self, lane: str) -> tuple[str, str]:
        """The Redis lists of a lane's messages: interactive, then batch."""
        return self.queue(lane), f"{self.celery}{batch_list(lane)}"

    def unacked(self) -> str:
        """Hash in which kombu's Redis transport keeps the messages workers hold."""
        return f"{self.celery}unacked"

    def result(self, job_id: str) -> str:
        """A job's one result, set once: Celery's own result key (its Redis backend's
        ``celery-task-meta-`` prefix, after :attr:`celery`), so ``AsyncResult`` and canvases
        read it where lanes wrote it and it is stored a single time."""
        return f"{self.celery}celery-task-meta-{job_id}"

    def handed_on(self, job_id: str) -> str:
        """Highest ``hop`` of the job's messages that handed it on to a next message (retry,
        wait, move, fallback): a redelivered message at or below it is stale."""
        return f"{self.prefix}:{{jobs}}:hop:{job_id}"

    def owner(self, job_id: str) -> str:
        """Fingerprint of the payload that claimed a job id: another payload may not use it."""
        return f"{self.prefix}:{{jobs}}:owner:{job_id}"

    def cancelled(self, job_id: str) -> str:
        """Set (with the result's TTL) when the caller gave up on a job: no provider call of
        it starts after this (``call_start.lua`` reads it)."""
        return f"{self.prefix}:{{jobs}}:cancel:{job_id}"

    def consumers(self, lane: str) -> str:
        """Sorted set of the workers consuming a lane: member the worker's node name, score
        the Redis server time (s) of its last heartbeat (:mod:`lanes.stores.consumers`)."""
        return f"{self.prefix}:consumers:{lane}"

    def replica_probe(self) -> str:
        """Written just before a ``WAIT`` (:mod:`lanes.stores.redis.replication`)."""
        return f"{self.prefix}:replica-probe"

    def pending(self) -> str:
        """Hash of unfinished jobs: job id → the message that runs next (queue, envelope)."""
        return f"{self.prefix}:{{jobs}}:pending"

    def pending_lane(self) -> str:
        """Hash of unfinished jobs: job id → the lane (queue) their next message is on."""
        return f"{self.prefix}:{{jobs}}:pending-lane"

    def backlog(self) -> str:
        """Hash of lanes: lane (queue) → unfinished jobs whose next message is on it, queued
        or waiting in a worker (kept with the pending entries, in the same scripts)."""
        return f"{self.prefix}:{{jobs}}:backlog"

    def pending_since(self) -> str:
        """Sorted set of unfinished jobs by the server time their entry last changed or was
        seen in a queue."""
        return f"{self.prefix}:{{jobs}}:pending-since"

    def canary(self, lane: str) -> str:
        """Hash of a lane's liveness canary: ``sent`` (the oldest canary not yet taken) and
        ``seen`` (when a worker last took one), server seconds."""
        return f"{self.prefix}:canary:{lane}"

    def clocks(self) -> str:
        """Hash host → JSON ``{"local": s, "redis": s}``: each worker host's clock beside the
        Redis server's, read at the same moment (``lanes doctor`` reports the skew)."""
        return f"{self.prefix}:clocks"

    def janitor_lock(self) -> str:
        """Held (with a TTL) by the one process sweeping for lost messages."""
        return f"{self.prefix}:janitor"

    # -- per instance (hash-tagged) -------------------------------------------------------------
    def limiter(self, instance: str, model_class: str = "all") -> str:
        """Hash with the token buckets (requests, input, output) of one instance/model class."""
        return f"{self.prefix}:rl:{{{instance}}}:{model_class}"

    def leases(self, instance: str) -> str:
        """Sorted set of concurrency leases: member lease id, score expiry (ms)."""
        return f"{self.prefix}:lease:{{{instance}}}"

    def cooldown(self, instance: str) -> str:
        """Set with a TTL while the instance cools down after a 429; value is the reason."""
        return f"{self.prefix}:cool:{{{instance}}}"

    def disabled(self, instance: str) -> str:
        """Set while the instance is disabled (401/402/403); value is the reason."""
        return f"{self.prefix}:off:{{{instance}}}"

    def health(self, instance: str) -> str:
        """Hash of recent successes/failures feeding the health score."""
        return f"{self.prefix}:health:{{{instance}}}"

    def scan_pattern(self) -> str:
        """Matches every key under this prefix (for cleanup in tests and `lanes reset`)."""
        return f"{self.prefix}:*"

    # -- rate limiter ---------------------------------------------------------------------------
    def reservation(self, instance: str, lease_id: str) -> str:
        """String set at grant and deleted by the first settle/release of that lease: makes
        settling idempotent. Lives longer than the lease (TTL in ms set by the limiter)."""
        return f"{self.prefix}:resv:{{{instance}}}:{lease_id}"

    # -- accounting ---------------------------------------------------------------------------
    def charges(self, job_id: str) -> str:
        """Hash of what a job was charged: field ``step:attempt``, value cost in USD."""
        return f"{self.prefix}:charge:{job_id}"

    # -- ledger hand-off ------------------------------------------------------------------------
    def ledger_events(self) -> str:
        """List of ledger events (JSON) handed off by workers and dispatchers, oldest first,
        waiting for a drainer to move them into the database."""
        return f"{self.prefix}:{{jobs}}:ledger:events"

    def ledger_lock(self) -> str:
        """Held (with a TTL) by the one process draining ledger events."""
        return f"{self.prefix}:ledger:lock"

    def ledger_drainers(self) -> str:
        """Sorted set of the running ledger drainers: member ``host:pid``, score the Redis
        server time (s) of its last round (:mod:`lanes.workers.services.ledger_health`)."""
        return f"{self.prefix}:ledger:drainers"

    def ledger_health(self) -> str:
        """Hash of the drainers' troubles: ``error`` (JSON of the last failed round, removed
        by the next good one), ``restarts`` (drainer processes replaced after they died) and
        ``restarted`` (JSON of the last replacement)."""
        return f"{self.prefix}:ledger:health"

    def calls(self, job_id: str) -> str:
        """Hash of provider calls started per ``step:attempt`` of a job (INCR: call 1, 2, ...).
        Shares the ``{jobs}`` hash tag with the ledger events: one script writes both."""
        return f"{self.prefix}:{{jobs}}:calls:{job_id}"

    # -- budgets (hash-tagged: every budget key one script touches lives in one slot) ----------
    def budget_counter(self, counter: str) -> str:
        """Hash ``{spent, reserved}`` (nano-USD) of one budget in one window
        (``global:daily:2026-12-02``)."""
        return f"{self.prefix}:{{budget}}:c:{counter}"

    def budget_reservation(self, job_id: str) -> str:
        """Hash of a job's reservation: its estimate, the counters it holds, its running call."""
        return f"{self.prefix}:{{budget}}:r:{job_id}"

    def budget_limits(self) -> str:
        """Hash budget id → limit (nano-USD) set with ``lanes budget --set-*``."""
        return f"{self.prefix}:{{budget}}:limits"

    def budget_built(self) -> str:
        """SET of the budget ids whose counters were rebuilt from the ledger; empty after a
        Redis restart, so each budget is rebuilt on its first use."""
        return f"{self.prefix}:{{budget}}:built"

    def budget_alerted(self, counter: str, at: float) -> str:
        """Set once an alert threshold was announced for one budget window."""
        return f"{self.prefix}:{{budget}}:alert:{counter}:{at:g}"

    def budget_rebuild_lock(self) -> str:
        """Held (with a TTL) by the one process rebuilding budget counters."""
        return f"{self.prefix}:{{budget}}:rebuild-lock"

    # -- prompt prefixes ------------------------------------------------------------------------
    def prefix_held(self, digest: str, model: str, instance: str) -> str:
        """Set while ``instance``'s provider cache holds the prefix for ``model``."""
        return f"{self.prefix}:pfx:{{{digest}}}:{model}:held:{instance}"

    def prefix_gate(self, digest: str, model: str, instance: str) -> str:
        """The id of the job writing the prefix on ``instance`` now (with a lease)."""
        return f"{self.prefix}:pfx:{{{digest}}}:{model}:gate:{instance}"

    def prefix_plan(self, digest: str, model: str) -> str:
        """The instance the prefix was first sent to, for the jobs that follow it."""
        return f"{self.prefix}:pfx:{{{digest}}}:{model}:plan"

    # -- streams ----------------------------------------------------------------------------
    def stream(self, job_id: str) -> str:
        """Redis stream of a streaming job's answer as it is generated."""
        return f"{self.prefix}:stream:{{{job_id}}}"

    # -- batches ----------------------------------------------------------------------------
    def batch_gather(self, instance: str, model: str) -> str:
        """Sorted set of the job ids waiting to be batched, by the time they came."""
        return f"{self.prefix}:{{batch}}:gather:{instance}:{model}"

    def batch_members(self) -> str:
        """Hash: job id -> the parked member (its envelope, call number, batch)."""
        return f"{self.prefix}:{{batch}}:members"

    def batch_open(self) -> str:
        """Hash: batch id -> the open batch (instance, model, provider id, members)."""
        return f"{self.prefix}:{{batch}}:open"

    def batch_lock(self, name: str) -> str:
        """Held (with a TTL) by the one process gathering or polling ``name``."""
        return f"{self.prefix}:{{batch}}:lock:{name}"

    # -- response cache -------------------------------------------------------------------------
    def response_cache(self, key: str) -> str:
        """A cached answer under its request key (:mod:`lanes.router.cache_key`)."""
        return f"{self.prefix}:cache:{key}"
