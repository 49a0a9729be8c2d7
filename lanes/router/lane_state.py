"""What the router may read about a lane's live state, without knowing where it is kept.

The Redis implementation lives in ``broker``; :class:`StaticLaneState` is the in-memory stub
for tests and for routing without Redis (``lanes route`` on a laptop).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
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
    backlog: int = 0
    """Unfinished jobs whose next message is on this instance's lane (queued, or waiting in
    one of its workers), as last read."""
    latency_s: float | None = None
    """Moving mean of the latency of its recent successful calls (None: none seen yet)."""
    model_latency_s: Mapping[str, float] = field(default_factory=dict)
    """The same mean per model, for the models it has answered with."""
    output_tokens: float | None = None
    """Moving mean of the output tokens of its recent successful calls (None: none seen)."""
    headroom: float | None = None
    """Calls its buckets would admit at once: the requests left, and the output tokens left
    over the mean call's (None: not known, or no bucket limits it)."""

    def without_cooldown(self) -> LaneStatus:
        """This status as it will be once the cooldown is over."""
        return replace(self, cooldown_s=0.0) if self.cooldown_s > 0 else self


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


class CachedLaneState:
    """A :class:`LaneStateReader` that asks ``inner`` at most once per ``ttl_s``.

    For dispatchers: routing on a state up to ``ttl_s`` old costs nothing, because the worker
    reads the live state again before every call (and moves the job if its lane cools down).
    """

    def __init__(
        self,
        inner: LaneStateReader,
        ttl_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner
        self._ttl_s = ttl_s
        self._clock = clock
        self._cached: dict[str, LaneStatus] = {}
        self._expires_at = 0.0

    def status(self, instance: str) -> LaneStatus:
        return self.statuses([instance])[instance]

    def expire(self) -> None:
        """Read the inner state again on the next call (e.g. after writing to it)."""
        self._expires_at = 0.0

    def count_tracked(self, instance: str) -> None:
        """This process just put one more job on ``instance``'s lane: count it in the cached
        backlog until the next read, so a burst of jobs sees the ones before it."""
        status = self._cached.get(instance)
        if status is not None:
            self._cached = {**self._cached, instance: replace(status, backlog=status.backlog + 1)}

    def statuses(self, instances: list[str]) -> dict[str, LaneStatus]:
        now = self._clock()
        cached = self._cached
        if now >= self._expires_at or any(name not in cached for name in instances):
            wanted = sorted(set(instances) | set(cached))
            cached = {**cached, **self._inner.statuses(wanted)}
            self._cached, self._expires_at = cached, now + self._ttl_s
        return {name: cached[name] for name in instances}
