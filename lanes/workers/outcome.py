"""What one run of a step ends in. The Celery task turns each into a return, retry or replace."""

from __future__ import annotations

from dataclasses import dataclass

from lanes.broker.message import Envelope
from lanes.broker.result import Result


@dataclass(frozen=True)
class Done:
    """The job is finished (``result.status`` is ``ok`` or ``failed``)."""

    result: Result


@dataclass(frozen=True)
class Retry:
    """Try the same step again after ``countdown_s``."""

    envelope: Envelope
    countdown_s: float


@dataclass(frozen=True)
class Forward:
    """Move the job to another lane's queue (the next fallback step)."""

    envelope: Envelope


@dataclass(frozen=True)
class Drop:
    """A stale message: its job already moved on. Acknowledge it and do nothing."""


@dataclass(frozen=True)
class Parked:
    """The job waits in a provider batch (:mod:`lanes.workers.services.batcher` answers it):
    acknowledge the message."""

    envelope: Envelope


Outcome = Done | Retry | Forward | Drop | Parked
