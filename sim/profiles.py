"""How each simulated instance behaves (:class:`Profile`) and what breaks (:class:`Fault`).

Both are frozen pydantic models so the control API can accept them as JSON and the
Python API can share one instance between threads without copying.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_CONTEXT_WINDOW = 200_000

FaultKind = Literal["429", "529", "500", "401", "timeout", "drop"]


class Profile(BaseModel):
    """One simulated instance: the models it serves, its speed and its per-minute limits.

    Limits are token buckets that hold one minute's worth and refill continuously;
    ``0`` means unlimited. ``latency_s`` is the mean added to every successful answer,
    spread uniformly by ``±latency_jitter_s`` (never below 0).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: list[str] = Field(
        default_factory=list, description="models served; empty accepts any model name"
    )
    context_windows: dict[str, Annotated[int, Field(gt=0)]] = Field(
        default_factory=dict, description="model -> context window in tokens"
    )
    default_context_window: int = Field(
        default=DEFAULT_CONTEXT_WINDOW, gt=0, description="for models not in context_windows"
    )
    latency_s: float = Field(default=0.0, ge=0)
    latency_jitter_s: float = Field(default=0.0, ge=0)
    requests_per_min: int = Field(default=0, ge=0)
    input_tokens_per_min: int = Field(default=0, ge=0)
    output_tokens_per_min: int = Field(default=0, ge=0)
    require_api_key: bool = Field(
        default=True,
        description="answer 401 without a key; turn off for an Ollama box that takes none",
    )

    def serves(self, model: str) -> bool:
        """Whether ``model`` is served here (an empty ``models`` serves every name)."""
        return not self.models or model in self.models

    def context_window(self, model: str) -> int:
        """The model's context window in tokens (prompt plus ``max_tokens``)."""
        return self.context_windows.get(model, self.default_context_window)


class Fault(BaseModel):
    """A failure injected into an instance's completion calls.

    Each call draws once per armed fault: with probability ``rate`` the fault fires, and
    after ``count`` firings (``None``: never) it disarms itself. Kinds:

    - ``"429"``: a rate-limit error; ``retry_after_s=None`` leaves out ``retry-after``, the
      way a spent budget answers (OpenAI's form then says ``insufficient_quota``).
    - ``"529"``: overloaded. The OpenAI-compatible endpoint answers 503 instead, the
      status OpenAI-style servers use for the same condition.
    - ``"500"``: an internal server error. ``"401"``: the key is refused.
    - ``"timeout"``: waits ``delay_s`` seconds, then answers normally (if still connected).
    - ``"drop"``: reads the request, then closes the connection without an answer.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: FaultKind
    rate: float = Field(default=1.0, ge=0.0, le=1.0, description="probability per call")
    count: int | None = Field(default=None, ge=1, description="disarm after this many firings")
    retry_after_s: float | None = Field(default=1.0, ge=0.0)
    delay_s: float = Field(default=30.0, ge=0.0, description="how long a timeout fault waits")

    @field_validator("kind", mode="before")
    @classmethod
    def _status_as_text(cls, value: object) -> object:
        # JSON callers naturally write the status as a number: {"kind": 429}.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value
