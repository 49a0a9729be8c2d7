"""Config of the HTTP front door, ``lanes serve``."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from lanes.kernel.config.checks import HOUR_S, seconds

AUTO = "lanes:auto"
"""The model name that leaves the choice to the router."""
TARGET_PREFIX = "lanes:"
"""``lanes:<instance or pool>``: the router picks the model on that target."""


class ServeSpec(BaseModel):
    """Where ``lanes serve`` listens and how it reads a request's ``model``."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    host: str = "127.0.0.1"
    port: int = Field(default=8700, ge=0, le=65535)
    default_model: str = AUTO
    """What a request's ``model`` of ``lanes:auto`` means: the router's choice, a model
    name, or ``lanes:<instance or pool>``."""
    aliases: dict[str, str] = Field(default_factory=dict)
    """Extra model names a client may send, each meaning a model, ``lanes:auto`` or
    ``lanes:<instance or pool>`` (e.g. ``gpt-4o: lanes:auto``)."""
    timeout_s: Annotated[float, seconds(1, HOUR_S)] = 600.0
    """Longest a request waits for its job; past it the caller gets a 504 (the job may
    still finish, and is charged if it does)."""
    key_cache_s: Annotated[float, seconds(0, HOUR_S)] = 5.0
    """How long a looked-up key is trusted before the ledger is asked again: a revoked key
    stops working within this."""
