"""The batch store in this process's memory."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

from lanes.stores.batches import OpenBatch, Parked


class MemoryBatches:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parked: dict[str, Parked] = {}
        self._sizes: dict[str, int] = {}
        self._waiting: dict[tuple[str, str], dict[str, float]] = {}
        self._open: dict[str, OpenBatch] = {}
        self._locks: set[str] = set()

    def park(self, instance: str, model: str, job_id: str, parked: Parked, size: int,
             now_s: float) -> bool:  # fmt: skip
        with self._lock:
            if job_id in self._parked:
                return False
            self._parked[job_id] = parked
            self._sizes[job_id] = size
            self._waiting.setdefault((instance, model), {})[job_id] = now_s
            return True

    def take(self, instance: str, model: str, batch_id: str, *, most: int, most_bytes: int,
             window_s: float, now_s: float) -> list[str]:  # fmt: skip
        with self._lock:
            waiting = self._waiting.get((instance, model), {})
            order = sorted(waiting, key=waiting.__getitem__)
            if not order or (len(order) < most and now_s - waiting[order[0]] < window_s):
                return []
            taken: list[str] = []
            size = 0
            for job_id in order[:most]:
                if taken and size + self._sizes[job_id] > most_bytes:
                    break
                size += self._sizes[job_id]
                taken.append(job_id)
                del waiting[job_id]
            self._open[batch_id] = OpenBatch(batch_id, instance, model, now_s, taken)
            return taken

    def submitted(self, batch_id: str, provider_id: str, custom_ids: dict[str, str]) -> None:
        with self._lock:
            found = self._open.get(batch_id)
            if found is not None:
                self._open[batch_id] = replace(
                    found, provider_id=provider_id, custom_ids=custom_ids
                )

    def open_batches(self) -> list[OpenBatch]:
        with self._lock:
            return list(self._open.values())

    def waiting(self, lanes: Sequence[tuple[str, str]]) -> list[int]:
        with self._lock:
            return [len(self._waiting.get(lane, {})) for lane in lanes]

    def member(self, job_id: str) -> Parked | None:
        with self._lock:
            return self._parked.get(job_id)

    def members(self, job_ids: Sequence[str]) -> list[Parked | None]:
        with self._lock:
            return [self._parked.get(job_id) for job_id in job_ids]

    def withdraw(self, job_id: str) -> None:
        with self._lock:
            found = self._parked.get(job_id)
            if found is not None:
                self._parked[job_id] = replace(found, withdrawn=True)

    def forget(self, job_ids: Sequence[str]) -> None:
        with self._lock:
            for job_id in job_ids:
                self._parked.pop(job_id, None)
                self._sizes.pop(job_id, None)

    def close(self, batch_id: str) -> None:
        with self._lock:
            self._open.pop(batch_id, None)

    def lock(self, name: str, ttl_s: float) -> bool:
        with self._lock:
            if name in self._locks:
                return False
            self._locks.add(name)
            return True

    def unlock(self, name: str) -> None:
        with self._lock:
            self._locks.discard(name)

    def parked_ids(self) -> set[str]:
        with self._lock:
            return set(self._parked)
