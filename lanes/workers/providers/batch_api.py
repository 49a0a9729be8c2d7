"""The provider batch interface: submit many requests at once for half the price, poll,
read each answer. Implementations translate vendor errors to :class:`ProviderError`s.

A custom id names each request inside one batch: 1-64 characters of ``[A-Za-z0-9_-]``
(the strictest of the vendors' rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from lanes.kernel.errors import ProviderError
from lanes.workers.providers.base import ProviderRequest, ProviderResponse

MemberKind = Literal["succeeded", "errored", "canceled", "expired"]


@dataclass(frozen=True)
class BatchItem:
    custom_id: str
    request: ProviderRequest


@dataclass(frozen=True)
class BatchStatus:
    """Where a submitted batch stands. ``ended``: every request has its final answer
    (succeeded, errored, canceled or expired) and the results can be read."""

    batch_id: str
    ended: bool
    status: str
    """The vendor's own word: ``in_progress``/``canceling``/``ended`` (Anthropic),
    ``validating``/``in_progress``/``finalizing``/``completed``/``failed``/``expired``/
    ``cancelling``/``cancelled`` (OpenAI)."""
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchOutcome:
    """One request's final answer: a response when ``kind`` is ``succeeded``, else an
    error (``errored``) or nothing (``canceled``, ``expired``)."""

    custom_id: str
    kind: MemberKind
    response: ProviderResponse | None = None
    error: ProviderError | None = None


class BatchProvider(Protocol):
    """One account's batch API. Every method is one or a few HTTP calls; none waits for
    the batch to end."""

    def submit(self, items: Sequence[BatchItem]) -> str:
        """Create a batch of ``items``; its id."""

    def status(self, batch_id: str) -> BatchStatus: ...

    def results(self, batch_id: str) -> list[BatchOutcome]:
        """Every request's outcome; call once :meth:`status` says ``ended``."""

    def cancel(self, batch_id: str) -> BatchStatus:
        """Ask the vendor to stop the batch; requests already answered stay answered."""

    def close(self) -> None: ...
