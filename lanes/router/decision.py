"""A routing decision: where a job goes, why, and what to try if it fails there."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from lanes.kernel.taxonomy import Classification


class Step(BaseModel):
    """One concrete step of a fallback chain: a target (instance or pool) and a model."""

    model_config = ConfigDict(frozen=True)

    instance: str
    model: str


class Alternative(BaseModel):
    model_config = ConfigDict(frozen=True)

    instance: str
    model: str
    score: float
    wait_s: float = 0.0
    """Estimated seconds behind the target's backlog before the call would start."""


class Decision(BaseModel):
    """Where one job goes.

    ``instance`` may name a pool until the dispatcher expands it to a member
    (``pool`` then keeps the pool's name).
    """

    model_config = ConfigDict(frozen=True)

    instance: str
    model: str
    strategy: str
    confidence: float = Field(ge=0, le=100)
    estimated_cost_usd: float = Field(ge=0)
    estimated_latency_s: float = Field(ge=0)
    """The model's typical latency for this output, plus ``estimated_wait_s``."""
    estimated_wait_s: float = Field(default=0.0, ge=0)
    """Seconds the job would wait behind its target's backlog before its call starts."""
    alternatives: list[Alternative] = Field(default_factory=list)
    chain: list[Step] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    rejections: dict[str, str] = Field(default_factory=dict)
    classification: Classification | None = None
    pool: str | None = None
