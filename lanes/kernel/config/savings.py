"""Config of the providers' two discounts: the batch API and the prompt cache."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from lanes.kernel.config.checks import DAY_S, HOUR_S, WEEK_S, seconds


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class BatchLaneSpec(_Frozen):
    """An instance whose provider has a batch API (Anthropic Message Batches, OpenAI Batch):
    what it charges and takes there."""

    price_factor: float = Field(default=0.5, gt=0, le=1)
    """Share of the normal price a batched request costs."""
    max_requests: int = Field(default=100_000, ge=1, strict=True)
    """Most requests in one batch."""
    max_bytes: int = Field(default=256_000_000, ge=1024, strict=True)
    """Most bytes of requests in one batch."""
    max_queued: int = Field(default=100_000, ge=1, strict=True)
    """Most requests in this lane's open batches at once (the provider's batch queue limit):
    jobs beyond it wait in the gathering list."""


class BatchSpec(_Frozen):
    """When a job goes through its lane's batch API instead of a call, and how batches run."""

    enabled: bool = True
    min_deadline_s: Annotated[float, seconds(60, WEEK_S)] = 3600.0
    """A job whose ``deadline_s`` is at least this goes to the batch API of its lane (when the
    lane has one); ``economy`` jobs go whatever their deadline."""
    gather_window_s: Annotated[float, seconds(0, HOUR_S)] = 2.0
    """How long the first job of a batch waits for others before the batch is submitted."""
    poll_interval_s: Annotated[float, seconds(0.01, HOUR_S)] = 10.0
    """How often an open batch is asked whether it ended."""
    withdraw_margin_s: Annotated[float, seconds(0, DAY_S)] = 600.0
    """A member still unanswered this long before its deadline is taken out of its batch and
    run as a call."""
    economy_deadline_s: Annotated[float, seconds(60, WEEK_S)] = DAY_S
    """The deadline an ``economy`` job without one is given: the providers' own window."""
    submit_stale_s: Annotated[float, seconds(1, DAY_S)] = 300.0
    """A batch whose submission never recorded a provider id after this long (its process
    died mid-submit) has its members run again."""


class CachingSpec(_Frozen):
    """Prompt caching of the jobs that mark a shared prefix (``cache_prefix``)."""

    affinity: bool = True
    """Send a job to the pool member whose cache holds its prefix, and let jobs that share a
    prefix wait for the first one's write instead of all writing it."""
    affinity_max_wait_s: Annotated[float, seconds(0, HOUR_S)] = 30.0
    """Most extra wait (backlog, or the writer's call) the affinity may cost a job; past it,
    the job goes where it would have gone and pays for the prefix in full."""
