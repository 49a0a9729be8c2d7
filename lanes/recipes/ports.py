"""What a recipe needs of a client: :class:`lanes.client.Lanes` is one, and a test can pass a
stand-in. Recipes never import the client itself: it is the floor above them (its
``review``, ``batch``, ``pipeline`` and ``compare`` methods call the recipes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from lanes.broker.handle import JobHandle
from lanes.dispatch.waiting import Collected
from lanes.kernel.config import Config
from lanes.router.decision import Decision
from lanes.router.job import Job


class RecipeClient(Protocol):
    config: Config

    def route(self, job: Job | dict[str, Any], *, strategy: str | None = None) -> Decision:
        """Where ``job`` would go; nothing is sent."""
        ...

    def submit_group(
        self, jobs: Sequence[Job | dict[str, Any]], *, strategy: str | None = None
    ) -> list[JobHandle]:
        """Send ``jobs`` as one Celery group, all or nothing."""
        ...

    def submit_chain(
        self,
        jobs: Sequence[Job | dict[str, Any]],
        *,
        strategy: str | None = None,
        labels: Sequence[str] = (),
    ) -> list[JobHandle]:
        """Send ``jobs`` as one Celery chain, each fed the answer of the one before."""
        ...

    def collect(self, handles: Sequence[JobHandle], deadline: float, reason: str) -> Collected:
        """Wait for ``handles`` until ``deadline``, then cancel the unfinished ones."""
        ...
