"""The validated shape of a lanes config file.

Everything here is immutable once loaded: config is built once and passed in.
Units are in the names (``_s``, ``_per_min``, ``_per_mtok``, ``_usd``); every duration (``_s``)
has a range (:func:`lanes.kernel.config.checks.seconds`).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from lanes.kernel.config.checks import DAY_S, HOUR_S, MONTH_S, WEEK_S, YEAR_S, lane_name, seconds
from lanes.kernel.config.savings import BatchLaneSpec, BatchSpec, CachingSpec
from lanes.kernel.config.serve import AUTO, TARGET_PREFIX, ServeSpec
from lanes.kernel.config.source import ConfigSource
from lanes.kernel.patterns import compile_safe
from lanes.kernel.taxonomy import DEFAULT_VITAL_THRESHOLD, STRATEGY_NAMES, Complexity, TaskType

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
LaneName = Annotated[str, Field(pattern=NAME_PATTERN), lane_name]
"""An instance or pool name: a Celery queue, so not a name Celery or kombu keep for
themselves (:data:`lanes.kernel.config.checks.RESERVED_NAMES`)."""
ALL_MODELS = "all"
"""The model class of every model without its own ``model_limits``: they share ``limits``."""


class _Frozen(BaseModel):
    # allow_inf_nan=False: an infinite weight, price or limit makes every score NaN and every
    # JSON output invalid; refuse it at load.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ProviderKind(StrEnum):
    ANTHROPIC = "anthropic"
    OPENAI = "openai"
    OLLAMA = "ollama"


class SimMode(StrEnum):
    AUTO = "auto"
    """Instances whose API key env var is unset talk to the simulator."""
    ALWAYS = "always"
    """Every instance talks to the simulator (tests, benchmarks)."""
    NEVER = "never"
    """Every instance talks to its real provider."""


class Price(_Frozen):
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cache_read_per_mtok: float = Field(default=0.0, ge=0)
    cache_write_per_mtok: float = Field(default=0.0, ge=0)
    """A cache write with the 5-minute TTL."""
    cache_write_1h_per_mtok: float | None = Field(default=None, ge=0)
    """A cache write with the 1-hour TTL; unset: 1.6 x ``cache_write_per_mtok`` (Anthropic's
    2x of input against 1.25x)."""

    def write_1h_per_mtok(self) -> float:
        if self.cache_write_1h_per_mtok is not None:
            return self.cache_write_1h_per_mtok
        return self.cache_write_per_mtok * 1.6


Feature = Literal["tools", "images", "documents"]


class ModelSpec(_Frozen):
    """One model as lanes knows it: price, context window, quality and strengths."""

    family: str = Field(default="claude", description="claude, glm, llama, qwen... for prompts")
    price: Price
    context_window: int = Field(gt=0)
    max_output_tokens: int = Field(default=8192, gt=0)
    quality: int = Field(ge=0, le=100)
    latency_s: Annotated[float, seconds(0.001, DAY_S)] = Field(
        description="typical latency of one call"
    )
    strengths: dict[TaskType, int] = Field(default_factory=dict)
    cache_min_tokens: int = Field(default=1024, ge=1, strict=True)
    """Shortest prefix the provider caches for this model: a shorter one is sent plain."""
    features: frozenset[Feature] = frozenset({"tools"})
    """What it takes besides text: ``tools`` (tool calls and structured output), ``images``,
    ``documents`` (PDFs). A job that needs one it lacks is not sent to it."""

    @field_validator("strengths")
    @classmethod
    def _strengths_in_range(cls, value: dict[TaskType, int]) -> dict[TaskType, int]:
        for task, score in value.items():
            if not 0 <= score <= 100:
                raise ValueError(f"strength for {task} must be 0-100, got {score}")
        return value


class Limits(_Frozen):
    """Account limits as the provider enforces them. 0 means unlimited."""

    # strict: YAML's ``true`` is not a limit of 1.
    requests_per_min: int = Field(default=0, ge=0, strict=True)
    input_tokens_per_min: int = Field(default=0, ge=0, strict=True)
    output_tokens_per_min: int = Field(default=0, ge=0, strict=True)
    concurrency: int = Field(default=0, ge=0, strict=True)


def with_margin(limits: Limits, margin: float) -> Limits:
    """``limits`` less a fraction ``margin`` of each per-minute limit (never below 1)."""
    if margin <= 0:
        return limits

    def cut(value: int) -> int:
        return max(1, int(value * (1 - margin))) if value > 0 else 0

    return Limits(
        requests_per_min=cut(limits.requests_per_min),
        input_tokens_per_min=cut(limits.input_tokens_per_min),
        output_tokens_per_min=cut(limits.output_tokens_per_min),
        concurrency=limits.concurrency,
    )


class WorkerSpec(_Frozen):
    pool: Literal["threads", "gevent", "solo", "prefork"] = "threads"
    concurrency: int = Field(default=32, ge=1, le=10_000)
    """Jobs one worker process runs at once: with ``threads`` keep it to a few hundred (each
    call holds a thread); ``gevent`` holds thousands of calls in one process."""


class InstanceSpec(_Frozen):
    """One account on one provider: a lane."""

    provider: ProviderKind
    base_url: str
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    models: list[str] = Field(min_length=1)
    limits: Limits = Limits()
    model_limits: dict[str, Limits] = Field(default_factory=dict)
    """Per-model limits where the provider keeps them per model class (concurrency stays
    per instance). Models not listed share ``limits``."""
    price_multiplier: float = Field(default=1.0, ge=0)
    tags: list[str] = Field(default_factory=list)
    timeout_s: Annotated[float, seconds(0.1, DAY_S)] = 600.0
    enabled: bool = True
    batch: BatchLaneSpec | None = None
    """The provider's batch API for this account; unset: the lane has none."""
    worker: WorkerSpec | None = None
    """The pool and concurrency of this lane's own workers (``lanes up``); unset: ``worker``."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    def api_key(self) -> SecretStr | None:
        """The key from the environment, or None when the variable is unset or empty."""
        if not self.api_key_env:
            return None
        value = os.environ.get(self.api_key_env, "")
        return SecretStr(value) if value else None

    def limits_for(self, model: str) -> tuple[str, Limits]:
        """(model class, limits) that govern ``model`` on this instance, before any margin.

        A model listed in ``model_limits`` is its own model class, named after the model;
        every other model (listed in ``models`` or not) shares ``limits`` under
        :data:`ALL_MODELS`. Concurrency is counted per instance whatever the class, so the
        ``concurrency`` of the returned limits caps that instance-wide count. Sharp edge: a
        model literally named ``"all"`` with its own limits would share the class name of the
        instance-wide buckets.
        """
        own = self.model_limits.get(model)
        if own is not None:
            return model, own
        return ALL_MODELS, self.limits


class SimulatorSpec(_Frozen):
    mode: SimMode = SimMode.AUTO
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    latency_s: Annotated[float, seconds(0, HOUR_S)] = 0.4
    """Mean simulated call latency (the demo's pace; benchmarks set their own)."""
    latency_jitter_s: Annotated[float, seconds(0, HOUR_S)] = 0.2
    enforce_limits: bool = True
    """Answer 429 + retry-after when a lane exceeds its configured limits, like the real API."""

    @field_validator("host")
    @classmethod
    def _loopback(cls, value: str) -> str:
        if value == "localhost":
            return value
        try:
            loopback = ipaddress.ip_address(value).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                f"{value!r} is not a loopback address; use 127.0.0.1, ::1 or localhost "
                "(the simulator's control API has no authentication)"
            )
        return value

    def base_url(self, instance: str) -> str:
        return f"http://{self.host}:{self.port}/{instance}"


class FlowerSpec(_Frozen):
    """Flower, the Celery monitor ``lanes up`` and ``lanes flower`` start."""

    enabled: bool = True
    """``lanes up`` starts Flower (``lanes flower`` runs it on its own either way)."""
    host: str = "127.0.0.1"
    port: int = Field(default=5555, ge=0, le=65535)
    control: bool = False
    """Open Flower's control endpoints (send, apply, revoke or abort tasks; shut down, restart
    or resize workers; change rate limits, time limits, consumers) and ``/api/task/result``
    to every Flower user. Risky: any of them can run jobs or stop lanes. Off: read-only."""


class MetricsSpec(_Frozen):
    """The Prometheus exporter (``lanes metrics``; ``lanes up`` serves it)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)
    multiproc_dir: str | None = None
    """Where worker processes write their metrics (``PROMETHEUS_MULTIPROC_DIR``); empty:
    ``<state_dir>/metrics``."""


class LivenessSpec(_Frozen):
    """The canary that finds a worker connected to a lane but not consuming it."""

    interval_s: Annotated[float, seconds(1, DAY_S, off="never")] = 15.0
    """How often each worker sends a canary down each of its lanes (0: never)."""
    timeout_s: Annotated[float, seconds(1, DAY_S)] = 30.0
    """A canary not taken this long after it was sent, with no job finished on its lane since,
    means the lane is not consumed."""


class RetrySpec(_Frozen):
    """The one retry loop: per fallback step, then on to the next step of the chain."""

    attempts_per_step: int = Field(default=3, ge=1, le=20)
    backoff_base_s: Annotated[float, seconds(0, HOUR_S)] = 0.5
    backoff_max_s: Annotated[float, seconds(0, HOUR_S)] = 10.0
    max_wait_s: Annotated[float, seconds(0, DAY_S)] = 120.0
    """Longest a job waits for capacity when every lane it may use is cooling down."""
    wait_slice_s: Annotated[float, seconds(0.1, HOUR_S)] = 5.0
    """Longest one worker thread sleeps for capacity before the job is re-queued with a short
    countdown (so waiting never holds a thread for long)."""
    exhausted_cooldown_s: Annotated[float, seconds(1, WEEK_S)] = 900.0
    """Cooldown after a 429 with no retry-after and no reset header (a spend cap)."""
    outage_s: Annotated[float, seconds(0, DAY_S)] = 60.0
    """Longest a worker thread waits for Redis to come back (a restart, a failover) before it
    leaves its message to be redelivered after the visibility timeout."""


class Weights(_Frozen):
    capability: float = Field(default=0.35, ge=0)
    cost: float = Field(default=0.20, ge=0)
    quality: float = Field(default=0.20, ge=0)
    latency: float = Field(default=0.15, ge=0)
    historical: float = Field(default=0.10, ge=0)

    @model_validator(mode="after")
    def _not_all_zero(self) -> Weights:
        if self.capability + self.cost + self.quality + self.latency + self.historical <= 0:
            raise ValueError("at least one weight must be above 0")
        return self


class CustomRule(_Frozen):
    """A regex on the prompt that pins a model and/or a lane. First match wins."""

    pattern: str
    model: str | None = None
    instance: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        compile_safe(value)
        return value

    @model_validator(mode="after")
    def _pins_something(self) -> CustomRule:
        if self.model is None and self.instance is None:
            raise ValueError("a custom rule needs a model, an instance, or both")
        return self


DEFAULT_VITAL_MIN_MODEL = "claude-sonnet-4-5"
"""Sonnet-class: the least a mistake-is-costly job runs on unless the config says otherwise."""


class RoutingSpec(_Frozen):
    strategy: str = "best_for_task"
    weights: Weights = Weights()
    custom_rules: list[CustomRule] = Field(default_factory=list)
    hook: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    cache_ttl_s: Annotated[float, seconds(0, DAY_S)] = 0.0
    default_chain: str | None = None
    vital_min_model: str | None = DEFAULT_VITAL_MIN_MODEL
    """The tier vital work needs: it only runs on models whose ``quality`` is at least this
    model's (null: no floor). When the default names a model the config does not define,
    there is no floor; a model named explicitly must be defined."""
    vital_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = DEFAULT_VITAL_THRESHOLD
    """Requests whose ``p_vital`` reaches this are vital; only those below it, with no
    vital cue, may run on a cheap lane. Lower it for more recall, at more cost."""

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        if value not in STRATEGY_NAMES:
            names = ", ".join(STRATEGY_NAMES)
            raise ValueError(f"unknown strategy {value!r}; choose one of {names}")
        return value


class ChainStep(_Frozen):
    """One step of a fallback chain: a lane (instance or pool) and optionally a model."""

    instance: str
    model: str | None = None


class LedgerSpec(_Frozen):
    """The durable ledger: every decision, call, cost and outcome, in a SQL database."""

    enabled: bool = True
    store_text: bool = False
    """Keep prompts and outputs in the ledger (off: only sizes, costs and outcomes)."""
    flush_interval_s: Annotated[float, seconds(0.1, HOUR_S)] = 1.0
    """How often a worker's drainer process moves handed-off ledger events from Redis into
    the database."""
    batch_size: int = Field(default=2000, ge=1, le=100_000)


class BudgetScope(StrEnum):
    GLOBAL = "global"
    INSTANCE = "instance"
    PROJECT = "project"
    USER = "user"


class BudgetPeriod(StrEnum):
    PER_REQUEST = "per_request"
    DAILY = "daily"
    MONTHLY = "monthly"


class BudgetAction(StrEnum):
    NOTIFY = "notify"
    """Log (and post to the webhook) once per budget, threshold and period."""
    SWITCH_TO_CHEAPER = "switch_to_cheaper"
    """Route with ``cost_optimized`` unless the job names its own strategy."""
    BLOCK_EXPENSIVE_MODELS = "block_expensive_models"
    """Refuse models whose output price is at least ``budgets.expensive_output_per_mtok``."""


MAX_BUDGET_USD = 1_000_000_000.0
"""The largest budget limit lanes accepts. Budget counters hold integer nano-USD in 64 bits
(at most about 9.2e9 USD) and the budget scripts add spend, reservations and an estimate to a
limit: a billion leaves room for all three."""


class BudgetLimit(_Frozen):
    """One budget: a spend limit for one scope over one period."""

    scope: BudgetScope = BudgetScope.GLOBAL
    name: str | None = Field(default=None, min_length=1, max_length=128)
    """Which instance, project or user (every scope but ``global`` needs one)."""
    period: BudgetPeriod
    limit_usd: float = Field(ge=0)
    """0 to :data:`MAX_BUDGET_USD`; ``-0`` reads as 0."""

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
            raise ValueError("a budget name may not contain control characters")
        return value

    @field_validator("limit_usd")
    @classmethod
    def _within_max(cls, value: float) -> float:
        if value > MAX_BUDGET_USD:
            raise ValueError(
                f"limit_usd {value:.12g} is above the largest budget lanes keeps,"
                f" {MAX_BUDGET_USD:,.0f} USD"
            )
        return value + 0.0  # -0.0 + 0.0 is 0.0: "-0" is no limit of its own

    @model_validator(mode="after")
    def _named_scope(self) -> BudgetLimit:
        if self.scope is BudgetScope.GLOBAL and self.name is not None:
            raise ValueError("a global budget takes no name; drop 'name' or pick a scope")
        if self.scope is not BudgetScope.GLOBAL and self.name is None:
            raise ValueError(f"a {self.scope.value} budget needs 'name': which {self.scope.value}")
        return self

    @property
    def budget_id(self) -> str:
        """``scope[:name]:period``, e.g. ``global:daily``, ``project:acme:monthly``."""
        who = self.scope.value if self.name is None else f"{self.scope.value}:{self.name}"
        return f"{who}:{self.period.value}"


class BudgetAlert(_Frozen):
    at: float = Field(gt=0, le=1)
    """Fraction of a budget's limit (spent + reserved) at which the action applies."""
    action: BudgetAction = BudgetAction.NOTIFY


class BudgetSpec(_Frozen):
    timezone: str = "UTC"
    """IANA time zone in which daily and monthly budgets reset (at local midnight)."""
    limits: list[BudgetLimit] = Field(default_factory=list)
    alerts: list[BudgetAlert] = Field(
        default_factory=lambda: [BudgetAlert(at=0.8, action=BudgetAction.NOTIFY)]
    )
    webhook_url: str | None = None
    """Alerts are also POSTed here as JSON (never blocking a job)."""
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=60)
    settle_wait_s: Annotated[float, seconds(0, HOUR_S)] = 30.0
    """How long a dispatcher waits for in-flight reservations to settle when a budget is
    full only because of them, before it refuses the job (0: refuse at once)."""
    expensive_output_per_mtok: float = Field(default=15.0, ge=0)
    """``block_expensive_models`` refuses models priced at or above this per million output
    tokens."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as UTC or Europe/Paris"
            ) from None
        return value

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value or None

    @model_validator(mode="after")
    def _unique(self) -> BudgetSpec:
        ids = [limit.budget_id for limit in self.limits]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"budget {', '.join(twice)} is defined more than once")
        return self


class CacheSpec(_Frozen):
    """The response cache: identical requests within ``ttl_s`` are answered from Redis."""

    enabled: bool = True
    ttl_s: Annotated[int, seconds(1, MONTH_S)] = 3600
    share_across_projects: bool = False
    """Off: a cached answer serves only the project that paid for it."""


class LearningSpec(_Frozen):
    """How recorded outcomes feed the scorer's ``historical`` component."""

    prior_samples: float = Field(default=5.0, gt=0)
    """Outcomes a lane is assumed to have before any is recorded (at ``prior_success``)."""
    prior_success: float = Field(default=0.9, ge=0, le=1)
    half_life_s: Annotated[float, seconds(1, YEAR_S)] = 86400.0
    """An outcome counts half as much after this long."""
    refresh_s: Annotated[float, seconds(0, DAY_S)] = 10.0
    """How often a dispatcher re-reads the learned performance from the ledger."""


class ReviewerSpec(_Frozen):
    """One reviewer of ``lanes review``: what it looks for and, optionally, where it runs."""

    name: Name
    focus: str = Field(min_length=1)
    """What the reviewer looks for; it goes into the review prompt."""
    system: str | None = None
    """The reviewer's system prompt (default: "You are a meticulous <name> code reviewer.")."""
    vital: bool | None = None
    """True: vital lanes only; False: cheap lanes are fine; None: the classifier decides.
    A reviewer named in ``review.vital_focus`` is vital whatever this says."""
    complexity: Complexity | None = None
    instance: str | None = None
    """Pin a lane or pool (refused for a vital reviewer if it is tagged ``cheap``)."""
    model: str | None = None
    max_tokens: int = Field(default=800, ge=1, le=128000)


def _default_reviewers() -> list[ReviewerSpec]:
    return [
        ReviewerSpec(
            name="type-safety",
            focus="type safety: missing or wrong annotations, None handling, casts",
            vital=False,
            complexity=Complexity.MEDIUM,
        ),
        ReviewerSpec(
            name="security",
            focus="security: injection, secrets in code, authorization, unsafe input",
            vital=True,
            complexity=Complexity.COMPLEX,
        ),
        ReviewerSpec(
            name="architecture",
            focus="architecture: layering, coupling, error handling strategy, transactional"
            " integrity",
            vital=True,
            complexity=Complexity.COMPLEX,
        ),
        ReviewerSpec(
            name="performance",
            focus="performance: N+1 queries, full scans, needless work in loops",
            vital=True,
            complexity=Complexity.COMPLEX,
        ),
    ]


class ReviewSpec(_Frozen):
    """``lanes review``: its reviewers, where Claude Code agent files are read, what is vital."""

    reviewers: list[ReviewerSpec] = Field(default_factory=_default_reviewers, min_length=1)
    agents_dir: str = ".claude/agents"
    """Claude Code agent files (``*.md`` with front matter); one named like a reviewer sets
    its model, lane and prompt (relative paths are from the working directory)."""
    vital_focus: list[str] = Field(
        default_factory=lambda: ["security", "architecture", "performance"]
    )
    """A reviewer whose name contains one of these is vital: never on a cheap lane, whatever
    its config or agent file says."""
    strategy: str = "criticality"
    timeout_s: Annotated[float, seconds(0.1, DAY_S)] = 600.0

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        if value not in STRATEGY_NAMES:
            raise ValueError(f"unknown strategy {value!r}; use one of {', '.join(STRATEGY_NAMES)}")
        return value

    @model_validator(mode="after")
    def _unique(self) -> ReviewSpec:
        names = [r.name for r in self.reviewers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"reviewer {', '.join(twice)} is defined more than once")
        return self


class BrokerSpec(_Frozen):
    """Where the lanes' queues live: Redis (the default, on ``redis_url``) or RabbitMQ."""

    url: str | None = None
    """RabbitMQ: ``amqp://user:password@host:5672/vhost``, the nodes of a cluster separated
    by ``;`` (a client moves to the next when one goes away). Empty: the queues are on Redis.
    Redis keeps every other state either way (limits, budgets, jobs, results)."""
    queue_type: Literal["quorum", "classic"] = "quorum"
    """RabbitMQ only: ``quorum`` queues are replicated over the cluster's nodes (a majority
    keeps every message); ``classic`` queues live on one node."""
    delivery_limit: int = Field(default=10, ge=2, le=1000)
    """RabbitMQ only: a message delivered this many times (its workers died each time) fails
    its job instead of running again; the queue itself dead-letters at twice this."""

    @field_validator("url")
    @classmethod
    def _amqp_scheme(cls, value: str | None) -> str | None:
        for node in (value or "").split(";"):
            if node.strip() and not node.strip().startswith(("amqp://", "amqps://")):
                raise ValueError(
                    f"{node.split('://', 1)[0]!r} is not a RabbitMQ URL; write"
                    " amqp://user:password@host:5672/vhost, the nodes of a cluster separated"
                    " by ';'"
                )
        return value or None


class Config(_Frozen):
    """The whole config. Build it with :func:`lanes.kernel.config.load_config`."""

    redis_url: str | None = Field(
        default=None, description="empty: 127.0.0.1:6379 if it answers, else an embedded Redis"
    )
    redis_prefix: str = Field(default="lanes", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    redis_sentinel_master: str = Field(default="mymaster", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    """The primary's name at the sentinels, when ``redis_url`` is a ``sentinel://`` URL."""
    redis_wait_replicas: int = Field(default=1, ge=0, le=16)
    """Behind Sentinel: replicas that must hold a submitted job, and a result, before the
    submit returns and the result's waiters are woken (``WAIT``); 0: do not wait."""
    redis_wait_ms: int = Field(default=500, ge=1, le=60_000)
    """The longest that wait lasts; past it lanes carries on and warns."""

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://", "sentinel://")):
            scheme = value.split("://", 1)[0] if "://" in value else value
            raise ValueError(
                f"{scheme!r} is not a Redis URL; write redis://host:port/db (rediss:// for TLS,"
                " unix:///path/to/socket, sentinel://host:26379;sentinel://host2:26379/db"
                " behind Sentinel)"
            )
        return value

    """Prefix of every Redis key lanes writes (several deployments can share one Redis)."""
    state_dir: str = ".lanes"
    result_ttl_s: Annotated[int, seconds(60, MONTH_S)] = 86400
    max_job_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Largest job accepted at submit: the UTF-8 bytes of its prompt, system, messages and
    metadata. A job travels in its queue message and its pending entry, and Redis runs with
    ``noeviction``: one huge job must not fill it."""
    visibility_timeout_s: Annotated[int, seconds(5, WEEK_S)] = 3600
    broker: BrokerSpec = BrokerSpec()
    worker: WorkerSpec = WorkerSpec()
    retry: RetrySpec = RetrySpec()
    janitor_interval_s: Annotated[float, seconds(1, DAY_S, off="never")] = 30.0
    """How often a worker looks for lost messages (0: never). One process sweeps at a time."""
    janitor_quiet_s: Annotated[float, seconds(1, DAY_S)] = 60.0
    """A job is only checked once its pending entry has not changed for this long."""
    limit_margin: float = Field(default=0.005, ge=0, lt=0.5)
    """Fraction of every per-minute limit lanes leaves unused: a provider starts counting when
    a request arrives, lanes when it reserves, and the difference must never add up to a 429."""
    interactive_reserve: float = Field(default=0.05, ge=0, lt=0.5)
    """Fraction of every limit (requests, tokens, concurrency slots, rounded up but leaving
    one) that batch jobs leave to interactive ones: an interactive job finds capacity at once
    on a lane whose batch backlog has used up the rest."""
    simulator: SimulatorSpec = SimulatorSpec()
    models: dict[str, ModelSpec] = Field(min_length=1)
    instances: dict[LaneName, InstanceSpec] = Field(min_length=1)
    pools: dict[LaneName, list[str]] = Field(default_factory=dict)
    fallback_chains: dict[Name, list[ChainStep]] = Field(default_factory=dict)
    routing: RoutingSpec = RoutingSpec()
    database_url: str | None = None
    """The ledger's SQLAlchemy URL; empty: SQLite at ``<state_dir>/ledger.db``."""
    ledger: LedgerSpec = LedgerSpec()
    budgets: BudgetSpec = BudgetSpec()
    cache: CacheSpec = CacheSpec()
    learning: LearningSpec = LearningSpec()
    review: ReviewSpec = ReviewSpec()
    production: bool = False
    """Refuse what is only fine on a laptop: a worker will not start against a Redis without a
    password, Flower will not start without basic auth."""
    flower: FlowerSpec = FlowerSpec()
    metrics: MetricsSpec = MetricsSpec()
    liveness: LivenessSpec = LivenessSpec()
    batch: BatchSpec = BatchSpec()
    caching: CachingSpec = CachingSpec()
    serve: ServeSpec = ServeSpec()
    _source: ConfigSource | None = PrivateAttr(default=None)

    @property
    def source(self) -> ConfigSource | None:
        """The file :func:`lanes.kernel.config.load_config` read and how it was chosen; None for a
        config built in code."""
        return self._source

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("sqlite:", "postgresql:", "postgresql+", "postgres:")):
            scheme = value.split("://", 1)[0] if "://" in value else value
            raise ValueError(
                f"{scheme!r} is not a supported database URL; write sqlite:///path/ledger.db or"
                " postgresql://user@host:5432/dbname"
            )
        return value or None

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        _check_cross_references(self)
        return self

    def lanes(self) -> list[str]:
        """Every lane (queue) name: one per instance."""
        return list(self.instances)

    def batches_on(self, instance: str) -> bool:
        """Whether jobs on ``instance`` may go through its batch API: batches are on, and the
        lane is enabled and has one."""
        spec = self.instances[instance]
        return self.batch.enabled and spec.enabled and spec.batch is not None

    def most_concurrency(self) -> int:
        """The most jobs any worker of this config runs at once (its ``worker``, or a lane's
        own): what each process's pools of connections must hold."""
        own = [spec.worker.concurrency for spec in self.instances.values() if spec.worker]
        return max([self.worker.concurrency, *own])

    def members(self, target: str) -> list[str]:
        """The instances behind a lane or pool name."""
        return list(self.pools[target]) if target in self.pools else [target]

    def price_usd(
        self, instance: str, model: str, usage: dict[str, int], *, batch: bool = False
    ) -> float:
        """What ``usage`` (tokens by kind, as a provider reports them) costs on
        ``instance``/``model``; ``batch``: through the instance's batch API."""
        price = self.models[model].price
        spec = self.instances[instance]
        writes_1h = usage.get("cache_creation_1h_input_tokens", 0)
        writes_5m = usage.get("cache_creation_input_tokens", 0) - writes_1h
        total = (
            usage.get("input_tokens", 0) * price.input_per_mtok
            + usage.get("output_tokens", 0) * price.output_per_mtok
            + usage.get("cache_read_input_tokens", 0) * price.cache_read_per_mtok
            + writes_5m * price.cache_write_per_mtok
            + writes_1h * price.write_1h_per_mtok()
        )
        factor = spec.batch.price_factor if batch and spec.batch is not None else 1.0
        return total * spec.price_multiplier * factor / 1_000_000


def _check_cross_references(cfg: Config) -> None:
    """Every name used must be defined; raise ValueError naming the key path."""
    for problem in (
        *_instance_problems(cfg),
        *_pool_problems(cfg),
        *_chain_problems(cfg),
        *_routing_problems(cfg),
        *_budget_problems(cfg),
        *_review_problems(cfg),
        *_serve_problems(cfg),
    ):
        raise ValueError(problem)


def _serve_problems(cfg: Config) -> Iterator[str]:
    named = {"serve.default_model": cfg.serve.default_model}
    named.update((f"serve.aliases.{alias}", value) for alias, value in cfg.serve.aliases.items())
    targets = {*cfg.instances, *cfg.pools}
    for key, value in named.items():
        target = value.removeprefix(TARGET_PREFIX) if value.startswith(TARGET_PREFIX) else None
        if value == AUTO or value in cfg.models or target in targets:
            continue
        yield (
            f"{key}: {value!r} is no model, {AUTO!r} or {TARGET_PREFIX}<instance or pool>; use"
            f" one of {', '.join([AUTO, *cfg.models])}"
        )


def _instance_problems(cfg: Config) -> Iterator[str]:
    for name, inst in cfg.instances.items():
        for model in inst.model_limits:
            if model not in inst.models:
                yield f"instances.{name}.model_limits: {model!r} is not in its models"
        for model in inst.models:
            if model not in cfg.models:
                yield (
                    f"instances.{name}.models: unknown model {model!r}; "
                    f"define it under models: or use one of {', '.join(cfg.models)}"
                )


def _pool_problems(cfg: Config) -> Iterator[str]:
    for pool, members in cfg.pools.items():
        if pool in cfg.instances:
            yield f"pools.{pool}: a pool cannot share its name with an instance"
        if not members:
            yield f"pools.{pool}: a pool needs at least one instance"
        twice = sorted({m for m in members if members.count(m) > 1})
        if twice:
            yield f"pools.{pool}: {', '.join(twice)} listed more than once; list each member once"
        for member in members:
            if member not in cfg.instances:
                yield f"pools.{pool}: unknown instance {member!r}"


def _chain_problems(cfg: Config) -> Iterator[str]:
    for chain, steps in cfg.fallback_chains.items():
        if not steps:
            yield f"fallback_chains.{chain}: a chain needs at least one step"
        for i, step in enumerate(steps):
            yield from _step_problems(cfg, f"fallback_chains.{chain}[{i}]", step)


def _step_problems(cfg: Config, key: str, step: ChainStep) -> Iterator[str]:
    if step.instance not in cfg.instances and step.instance not in cfg.pools:
        yield f"{key}.instance: unknown instance or pool {step.instance!r}"
        return
    if step.model is None:
        return
    if step.model not in cfg.models:
        yield f"{key}.model: unknown model {step.model!r}"
        return
    members = cfg.members(step.instance)
    if any(m not in cfg.instances for m in members):
        return  # the pool's own check names the unknown member
    offered = [m for m in cfg.models if all(m in cfg.instances[i].models for i in members)]
    if step.model not in offered:
        yield (
            f"{key}.model: {step.instance} does not offer {step.model!r}; "
            f"use one of {', '.join(offered) or 'its models'}"
        )


def _budget_problems(cfg: Config) -> Iterator[str]:
    for i, limit in enumerate(cfg.budgets.limits):
        if limit.scope is BudgetScope.INSTANCE and limit.name not in cfg.instances:
            yield (
                f"budgets.limits[{i}].name: unknown instance {limit.name!r}; use one of "
                f"{', '.join(cfg.instances)}"
            )


def _routing_problems(cfg: Config) -> Iterator[str]:
    lanes = set(cfg.instances) | set(cfg.pools)
    for i, rule in enumerate(cfg.routing.custom_rules):
        if rule.model is not None and rule.model not in cfg.models:
            yield f"routing.custom_rules[{i}].model: unknown model {rule.model!r}"
        if rule.instance is not None and rule.instance not in lanes:
            yield f"routing.custom_rules[{i}].instance: unknown lane {rule.instance!r}"
    chain = cfg.routing.default_chain
    if chain is not None and chain not in cfg.fallback_chains:
        yield f"routing.default_chain: unknown chain {chain!r}"
    tier = cfg.routing.vital_min_model
    named = "vital_min_model" in cfg.routing.model_fields_set
    if tier is not None and named and tier not in cfg.models:
        yield (
            f"routing.vital_min_model: unknown model {tier!r}; name one defined under models:"
            " (vital work runs on models at least as good as it), or null for no floor"
        )


def _review_problems(cfg: Config) -> Iterator[str]:
    for i, reviewer in enumerate(cfg.review.reviewers):
        key = f"review.reviewers[{i}]"
        if reviewer.instance and reviewer.instance not in (*cfg.instances, *cfg.pools):
            yield f"{key}.instance: unknown lane {reviewer.instance!r}"
        if reviewer.model and reviewer.model not in cfg.models:
            yield f"{key}.model: unknown model {reviewer.model!r}"
