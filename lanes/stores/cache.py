"""The response cache: answers already bought, under their request key, for ``cache.ttl_s``.

The key is :func:`lanes.router.cache_key.request_key` (model-agnostic: any lane's answer serves the
same request). The port: :class:`ResponseCache`. Implementations:
:class:`lanes.stores.redis.cache.RedisResponseCache` (one JSON string per answer under
``Keys.response_cache``, with an ``EX`` TTL, shared by every process; its ``put_in`` queues the
write on the pipeline that records a result) and
:class:`lanes.stores.memory.cache.MemoryResponseCache`, its in-process twin with an injectable
clock.

A cached value that cannot be read back is a miss, never an error: the job is simply answered
by a provider again. Redis errors surface as :class:`lanes.kernel.errors.InfrastructureError`.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lanes.broker.result import Result


class CachedAnswer(BaseModel):
    """What a later identical request is answered with, and what it cost to buy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    stop_reason: str | None = None
    usage: dict[str, int] = Field(default_factory=dict)
    """The provider's usage fields when the answer was bought."""
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    """What the answer cost when it was bought: what each hit saves."""
    instance: str
    """The instance that answered (a pool member, never the pool)."""
    model: str
    created_at: float
    """Epoch seconds when the answer was bought."""
    simulated: bool = False
    """Bought from the provider simulator, not a real provider (a hit says so too)."""

    @classmethod
    def from_result(cls, result: Result, *, created_at: float | None = None) -> CachedAnswer:
        """The answer of a successful ``result``; ``created_at`` defaults to its
        ``finished_at``. ValueError for a failed result: failures are never cached."""
        if not result.ok:
            raise ValueError(f"job {result.job_id} failed: a failure is not an answer to cache")
        return cls(
            text=result.text,
            stop_reason=result.stop_reason,
            usage=dict(result.usage),
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cost_usd=result.cost_usd,
            instance=result.instance,
            model=result.model,
            created_at=result.finished_at if created_at is None else created_at,
            simulated=result.simulated,
        )


def answer_json(answer: CachedAnswer) -> str:
    """The stored form of ``answer``."""
    return answer.model_dump_json()


def parse_answer(raw: str | bytes) -> CachedAnswer | None:
    """The answer stored as ``raw``; None when it is not a valid :class:`CachedAnswer`
    (corrupt, truncated, or written by an incompatible version)."""
    try:
        return CachedAnswer.model_validate_json(raw)
    except ValidationError:
        return None


def check_ttl(ttl_s: int) -> None:
    """ValueError unless ``ttl_s`` is a whole number of seconds >= 1 (Redis ``EX``)."""
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s < 1:
        raise ValueError(f"ttl_s must be a whole number of seconds >= 1, got {ttl_s!r}")


class ResponseCache(Protocol):
    """Cached answers by request key. Keys are opaque strings (hex digests in practice)."""

    def get(self, key: str) -> CachedAnswer | None:
        """The answer cached under ``key``; None on a miss, an expired entry or an unreadable
        one (which is dropped)."""
        ...

    def put(self, key: str, answer: CachedAnswer, ttl_s: int) -> None:
        """Cache ``answer`` under ``key`` for ``ttl_s`` seconds (>= 1), replacing any entry."""
        ...

    def clear(self) -> int:
        """Drop every cached answer of this cache (and nothing else); returns how many."""
        ...


__all__ = [
    "CachedAnswer",
    "ResponseCache",
    "answer_json",
    "check_ttl",
    "parse_answer",
]
