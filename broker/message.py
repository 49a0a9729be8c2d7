"""The one argument of the ``lanes.run`` task: a job, its chain and where it is on it.

Plain JSON (no pickle). It carries the prompt but never a secret: API keys stay in the
worker's environment. Flower shows :meth:`Envelope.label`, not the envelope.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from router.decision import Step
from router.job import Job


class FallbackEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    from_instance: str
    from_model: str
    to_step: int
    reason: str


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    job: Job
    chain: list[Step] = Field(min_length=1)
    step: int = Field(default=0, ge=0)
    attempt: int = Field(default=0, ge=0)
    instance: str
    """The concrete instance of this step (a pool already expanded to one member)."""
    input_tokens: int = Field(default=0, ge=0)
    """Estimated input tokens, from the dispatcher's classification (for fit and limits)."""
    fallbacks: list[FallbackEvent] = Field(default_factory=list)
    waited_s: float = Field(default=0.0, ge=0)
    """Time spent re-queued waiting for capacity or a cooldown, bounded by retry.max_wait_s."""
    hop: int = Field(default=0, ge=0)
    """Messages this job went through before this one: every retry, wait, move or fallback
    publishes the next message with ``hop + 1``, so a redelivered older message is stale."""

    @property
    def model(self) -> str:
        return self.chain[self.step].model

    def label(self) -> str:
        """What monitoring shows instead of the arguments."""
        return f"job={self.job.id} step={self.step} attempt={self.attempt} lane={self.instance}"

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=False)

    def retried(self) -> Envelope:
        return self.model_copy(update={"attempt": self.attempt + 1, "hop": self.hop + 1})

    def waiting(self, countdown_s: float) -> Envelope:
        return self.model_copy(
            update={"waited_s": self.waited_s + countdown_s, "hop": self.hop + 1}
        )

    def moved(self, instance: str) -> Envelope:
        """Same step on another member of the step's pool."""
        return self.model_copy(update={"instance": instance, "attempt": 0, "hop": self.hop + 1})

    def advanced(self, instance: str, reason: str) -> Envelope:
        event = FallbackEvent(
            from_instance=self.instance, from_model=self.model, to_step=self.step + 1, reason=reason
        )
        return self.model_copy(
            update={
                "step": self.step + 1,
                "attempt": 0,
                "instance": instance,
                "fallbacks": [*self.fallbacks, event],
                "hop": self.hop + 1,
            }
        )
