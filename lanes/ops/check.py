"""A finding of ``lanes doctor``, whichever check made it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lanes.kernel.redact import mask_url_secrets

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One finding: what was checked, how it went, what was seen and what to do about it."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def __post_init__(self) -> None:
        # Whoever builds a row, a URL's credentials never reach the screen.
        object.__setattr__(self, "detail", mask_url_secrets(self.detail))
        object.__setattr__(self, "fix", mask_url_secrets(self.fix))
