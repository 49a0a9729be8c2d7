"""Deterministic stand-ins shared by tests."""

from __future__ import annotations


class FakeClock:
    """A clock that only moves when told to (seconds)."""

    def __init__(self, start_s: float = 1_000.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds
