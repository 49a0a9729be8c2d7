"""How each simulated instance behaves (:class:`Profile`) and what breaks (:class:`Fault`).

Both are frozen pydantic models so the control API can accept them as JSON and the
Python API can share one instance between threads without copying.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_CONTEXT_WINDOW = 200_000

FaultKind = Literal["429", "529", "500", "401", "timeout", "drop"]


class ModelLimits(BaseModel):
    """The per-minute limits of one model that the provider meters apart from the others
    (its own model class). ``0`` means unlimited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests_per_min: int = Field(default=0, ge=0)
    input_tokens_per_min: int = Field(default=0, ge=0)
    output_tokens_per_min: int = Field(default=0, ge=0)


class Profile(BaseModel):
    """One simulated instance: the models it serves, its speed and its per-minute limits.

    Limits are token buckets that hold one minute's worth and refill continuously;
    ``0`` means unlimited. A model listed in ``model_limits`` draws on buckets of its own
    sized by those limits; every other model shares the instance-wide buckets sized by
    ``requests_per_min``, ``input_tokens_per_min`` and ``output_tokens_per_min``.
    ``latency_s`` is the mean added to every successful answer, spread uniformly by
    ``±latency_jitter_s`` (never below 0). ``prompt_cache`` and ``cache_min_tokens`` steer
    :mod:`lanes.sim.prompt_cache`. A streamed answer spreads the same latency over its
    events: the first content after ``first_token_fraction`` of it, the rest evenly over
    the remainder. The ``batch_*`` fields steer the batch endpoints
    (:mod:`lanes.sim.batches`), whose requests never draw on the per-minute limits.
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
    batch_delay_s: float = Field(
        default=0.5, ge=0, description="a batch ends this long after it was created"
    )
    batch_expire_s: float = Field(
        default=86_400.0, gt=0, description="a batch not ended by then: its requests expire"
    )
    batch_error_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="share of batch requests answered with a 500"
    )
    batch_max_requests: int = Field(
        default=100_000, ge=1, description="most requests one batch may hold"
    )
    requests_per_min: int = Field(default=0, ge=0)
    input_tokens_per_min: int = Field(default=0, ge=0)
    output_tokens_per_min: int = Field(default=0, ge=0)
    model_limits: dict[str, ModelLimits] = Field(
        default_factory=dict,
        description="model -> its own limits; models not listed share the instance-wide ones",
    )
    require_api_key: bool = Field(
        default=True,
        description="answer 401 without a key; turn off for an Ollama box that takes none",
    )
    prompt_cache: bool = Field(
        default=True,
        description="cache prompt prefixes as the provider does; off: never a cache read or write",
    )
    cache_min_tokens: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict,
        description="model -> shortest cacheable prefix in tokens, instead of the built-in one",
    )
    text_only_models: tuple[str, ...] = Field(
        default=(),
        description="models that refuse image and document input with a 400",
    )
    first_token_fraction: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="share of a streamed call's latency before its first content arrives",
    )

    @model_validator(mode="after")
    def _model_limits_are_served(self) -> Profile:
        unserved = [model for model in self.model_limits if not self.serves(model)]
        if unserved:
            raise ValueError(f"model_limits: {', '.join(unserved)} not in models")
        return self

    def serves(self, model: str) -> bool:
        """Whether ``model`` is served here (an empty ``models`` serves every name)."""
        return not self.models or model in self.models

    def limits_for(self, model: str) -> tuple[str | None, ModelLimits]:
        """(model class, limits) that govern ``model``: the model's own name and limits when
        it is in ``model_limits``, else ``None`` and the instance-wide limits it shares
        with every other such model."""
        own = self.model_limits.get(model)
        if own is not None:
            return model, own
        return None, self.instance_limits()

    def instance_limits(self) -> ModelLimits:
        """The instance-wide limits, shared by every model without its own."""
        return ModelLimits(
            requests_per_min=self.requests_per_min,
            input_tokens_per_min=self.input_tokens_per_min,
            output_tokens_per_min=self.output_tokens_per_min,
        )

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
