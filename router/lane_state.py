"""What the router may read about a lane's live state, without knowing where it is kept.

The Redis implementation lives in ``broker``; :class:`StaticLaneState` is the in-memory stub
for tests and for routing without Redis (``lanes route`` on a laptop).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class LaneStatus:
    """One instance's state as the scorer's filters see it."""

    disabled_reason: str | None = None
    """Set when the instance is disabled (bad key, unpaid account)."""
    cooldown_s: float = 0.0
    """Seconds until a rate-limit cooldown ends; 0 when not cooling down."""
    health: float = 1.0
    """0 (every recent call failed) to 1 (all recent calls succeeded)."""


class LaneStateReader(Protocol):
    def status(self, instance: str) -> LaneStatus:
        """The current state of one instance. Must be cheap: it is on the routing hot path."""
        ...

    def statuses(self, instances: list[str]) -> dict[str, LaneStatus]:
        """The state of several instances at once (one round trip for remote stores)."""
        ...


@dataclass
class StaticLaneState:
    """In-memory lane state: everything healthy unless set otherwise."""

    states: dict[str, LaneStatus] = field(default_factory=dict)

    def status(self, instance: str) -> LaneStatus:
        return self.states.get(instance, _HEALTHY)

    def statuses(self, instances: list[str]) -> dict[str, LaneStatus]:
        return {name: self.status(name) for name in instances}


_HEALTHY = LaneStatus()


class HistoryReader(Protocol):
    def score(self, instance: str, model: str, task_type: str) -> float | None:
        """Historical performance 0-1 for this (instance, model, task type), or None if unknown."""
        ...


class NoHistory:
    """History before any outcome is recorded: always neutral."""

    def score(self, instance: str, model: str, task_type: str) -> float | None:
        return None
