"""Files uploaded to (or written by) one simulated instance, as OpenAI's Files API keeps
them: batch input files and the output and error files of ended batches.

Files live in memory for the life of the simulator; nothing expires them.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

PURPOSES = frozenset(
    {"assistants", "assistants_output", "batch", "batch_output", "fine-tune"}
    | {"fine-tune-results", "vision", "user_data"}
)
# Ids only need to be unique; a private source keeps the seeded draws reproducible.
_ids = random.Random()


def new_id(prefix: str) -> str:
    """A fresh id such as ``file-3f2a...``."""
    return f"{prefix}{_ids.getrandbits(96):024x}"


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def describe(self) -> dict[str, object]:
        """The File object of the Files API."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


class FileStore:
    """One instance's files by id. Thread-safe."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}

    def add(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        stored = StoredFile(new_id("file-"), filename, purpose, data, int(self._clock()))
        with self._lock:
            self._files[stored.id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        with self._lock:
            return self._files.get(file_id)

    def delete(self, file_id: str) -> StoredFile | None:
        with self._lock:
            return self._files.pop(file_id, None)

    def listing(self) -> list[StoredFile]:
        """Every file, newest first."""
        with self._lock:
            return list(reversed(self._files.values()))
