"""The prefix store in this process's memory, on an injectable clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from lanes.stores.prefixes import PLAN_TTL_S, Gate


class MemoryPrefixes:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._expiry: dict[tuple[str, ...], float] = {}
        self._values: dict[tuple[str, ...], str] = {}

    def _get(self, key: tuple[str, ...]) -> str | None:
        if self._expiry.get(key, 0.0) <= self._clock():
            self._values.pop(key, None)
            return None
        return self._values.get(key)

    def _set(self, key: tuple[str, ...], value: str, ttl_s: float) -> None:
        self._values[key] = value
        self._expiry[key] = self._clock() + ttl_s

    def place(self, digest: str, model: str, members: Sequence[str], choice: str) -> str:
        with self._lock:
            for member in members:
                held = self._get(("held", digest, model, member))
                if held is not None or self._get(("gate", digest, model, member)) is not None:
                    return member
            planned = self._get(("plan", digest, model))
            if planned is None:
                self._set(("plan", digest, model), choice, PLAN_TTL_S)
                planned = choice
        return planned if planned in members else choice

    def gate(self, digest: str, model: str, instance: str, job_id: str, lease_s: float) -> Gate:
        with self._lock:
            if self._get(("held", digest, model, instance)) is not None:
                return Gate.WARM
            holder = self._get(("gate", digest, model, instance))
            if holder is None:
                self._set(("gate", digest, model, instance), job_id, lease_s)
                return Gate.WRITE
            return Gate.WRITE if holder == job_id else Gate.WAIT

    def written(self, digest: str, model: str, instance: str, job_id: str, ttl_s: int) -> None:
        with self._lock:
            self._set(("held", digest, model, instance), "1", ttl_s)
            self._lift(digest, model, instance, job_id)

    def release(self, digest: str, model: str, instance: str, job_id: str) -> None:
        with self._lock:
            self._lift(digest, model, instance, job_id)

    def _lift(self, digest: str, model: str, instance: str, job_id: str) -> None:
        if self._get(("gate", digest, model, instance)) == job_id:
            self._values.pop(("gate", digest, model, instance), None)
