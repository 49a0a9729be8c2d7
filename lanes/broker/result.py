"""The one result a caller gets for a job: success or failure, typed.

A job ends once (:class:`lanes.stores.jobs.JobStore` records its first result and keeps it);
:class:`~lanes.broker.handle.JobHandle` returns it. ``status`` is ``"ok"`` or ``"failed"``; a failed
job still says where it last ran and why (``error``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lanes.broker.message import FallbackEvent


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)

    job_id: str
    status: Literal["ok", "failed"]
    instance: str
    """The account (instance) that did the work, or last tried to."""
    model: str
    step: int = Field(ge=0)
    """Index of the fallback-chain step the job ended on."""
    attempt: int = Field(ge=0)
    text: str = ""
    """The answer's text (its text blocks joined); with ``output_schema``, the JSON."""
    content: list[dict[str, Any]] = Field(default_factory=list)
    """The answer as Messages API blocks: ``text`` and ``tool_use`` (``id``, ``name``,
    ``input``)."""
    stop_reason: str | None = None
    """``end_turn``, ``max_tokens``, ``stop_sequence`` or ``tool_use``."""
    usage: dict[str, int] = Field(default_factory=dict)
    """The provider's usage fields (input, output, cache read and cache creation tokens)."""
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    latency_s: float = Field(default=0.0, ge=0)
    """Time of the provider call that answered (not the queueing before it)."""
    fallbacks: list[FallbackEvent] = Field(default_factory=list)
    waited_s: float = Field(default=0.0, ge=0)
    """Time spent re-queued waiting for capacity or a cooldown."""
    deliveries: int = Field(default=1, ge=1)
    """Messages the job took to end: its first, plus one per wait for capacity, retry, move to
    another pool member or fallback."""
    project: str | None = None
    user: str | None = None
    worker: str = ""
    """Host name of the worker that recorded the result."""
    finished_at: float = 0.0
    """Epoch seconds."""
    simulated: bool = False
    """True when the lane talked to the local provider simulator, not the real provider."""
    cached: bool = False
    """Answered from the response cache: no provider call; ``instance`` and ``model`` say
    who wrote the answer when it was bought."""
    cost_saved_usd: float = Field(default=0.0, ge=0)
    """What a cached answer cost when it was bought (this job paid nothing)."""
    batched: bool = False
    """Answered through the provider's batch API; ``cost_usd`` is at its batch rate."""
    batch_saved_usd: float = 0.0
    """What the batch rate took off ``cost_usd``."""
    prompt_cache_saved_usd: float = 0.0
    """What the provider's prompt cache took off ``cost_usd``: reads' discount less writes'
    premium (negative when this call only wrote a prefix)."""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        """The answer's ``tool_use`` blocks: the calls the model asks the caller to make."""
        return [block for block in self.content if block.get("type") == "tool_use"]

    @property
    def metered_input_tokens(self) -> int:
        """The input an input-tokens-per-minute limit counts: uncached input and cache writes
        (cache reads are not counted)."""
        return self.input_tokens + self.usage.get("cache_creation_input_tokens", 0)

    def to_wire(self) -> dict[str, Any]:
        """Plain JSON data (what Celery carries and a result store keeps)."""
        return self.model_dump(mode="json")
