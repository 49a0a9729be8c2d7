"""Learning from outcomes: the scorer's ``historical`` component from the ledger's counts.

:class:`LearnedHistory` is the :class:`lanes.router.lane_state.HistoryReader` fed by what the ledger
learned per (instance, model, task type) (``Ledger.performance()``, rows like
:class:`lanes.stores.ledger.PerformanceRow`; this floor cannot import them, so
:class:`PerformanceLike` names the attributes it reads).

**Success** is the mean of a Beta prior updated with the outcomes::

    success = (successes + prior_samples * prior_success) / (samples + prior_samples)

so a lane nobody has data on scores ``prior_success``, a handful of outcomes moves it a little
and hundreds move it all the way: one unlucky failure cannot sink a lane, and one lucky
success cannot crown one. **Ratings** (1-5) blend in by how many there are against the same
prior, at most half the score: ``w = ratings / (ratings + prior_samples) * 0.5`` and
``score = (1 - w) * success + w * (rating - 1) / 4``.

**Decay**: every count halves each ``half_life_s`` from the row's ``updated_at``. Without it a
lane that failed for a day would carry that day for ever; with it, as bad outcomes age out the
lane's score drifts back to the prior and the lane wins its traffic back, without anyone
resetting anything.

**Unknown** lanes (no row at all) score the prior, ``prior_success``, like a lane whose bad
outcomes have aged out: every lane is judged on one baseline, so a lane with a few failures
ranks below an untried one, and a lane with a good record above it.

The rows are re-read at most every ``refresh_s`` (0: on every call); the read happens on one
thread while others keep routing on the previous rows. If the ledger is away the last rows
stay in use and a warning is logged: routing never fails because learning cannot read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from lanes.kernel.config.models import LearningSpec

log = logging.getLogger(__name__)

RATING_SHARE = 0.5
"""The most the mean rating can weigh in the score (with many ratings)."""


class PerformanceLike(Protocol):
    """What :class:`LearnedHistory` reads of one ledger row; counts are decayed to
    ``updated_at`` (epoch seconds)."""

    @property
    def instance(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def task_type(self) -> str: ...
    @property
    def samples(self) -> float: ...
    @property
    def successes(self) -> float: ...
    @property
    def ratings(self) -> float: ...
    @property
    def rating(self) -> float | None:
        """Mean rating 1-5, None before any."""
        ...

    @property
    def updated_at(self) -> float: ...


RowKey = tuple[str, str, str]
"""(instance, model, task type)."""
_NO_POOLS: Mapping[str, Sequence[str]] = MappingProxyType({})


@dataclass
class Tally:
    """Counts of one or more rows, decayed to one moment."""

    samples: float = 0.0
    successes: float = 0.0
    ratings: float = 0.0
    rating_sum: float = 0.0
    """Sum of ``rating * ratings``: divided by ``ratings`` it is the mean rating."""

    def add(self, row: PerformanceLike, factor: float) -> None:
        self.samples += row.samples * factor
        self.successes += row.successes * factor
        if row.rating is not None and row.ratings > 0:
            self.ratings += row.ratings * factor
            self.rating_sum += row.rating * row.ratings * factor


def decay(elapsed_s: float, half_life_s: float) -> float:
    """How much a count ``elapsed_s`` old still weighs (1 when new or from the future)."""
    return float(0.5 ** (max(0.0, elapsed_s) / half_life_s))


def blended_score(tally: Tally, spec: LearningSpec) -> float:
    """The 0-1 score of decayed counts (see the module docstring)."""
    prior = spec.prior_samples
    success = (tally.successes + prior * spec.prior_success) / (tally.samples + prior)
    score = success
    if tally.ratings > 0:
        weight = tally.ratings / (tally.ratings + prior) * RATING_SHARE
        rating_part = (tally.rating_sum / tally.ratings - 1) / 4
        score = (1 - weight) * success + weight * rating_part
    return min(1.0, max(0.0, score))


@dataclass(frozen=True)
class _Snapshot:
    rows: Mapping[RowKey, Sequence[PerformanceLike]] = field(default_factory=dict)
    read_at: float | None = None
    """Clock reading of the last attempt to read the source; None before the first."""


def index_rows(rows: Sequence[PerformanceLike]) -> dict[RowKey, list[PerformanceLike]]:
    """Rows by (instance, model, task type); a key may repeat in a source that does not
    aggregate (its rows are summed)."""
    out: dict[RowKey, list[PerformanceLike]] = {}
    for row in rows:
        out.setdefault((row.instance, row.model, row.task_type), []).append(row)
    return out


class LearnedHistory:
    """A :class:`HistoryReader` learning from the ledger's performance rows.

    ``source`` returns every row (``ledger.performance``); it is called at most once per
    ``spec.refresh_s`` of ``clock`` (epoch seconds, the clock of ``updated_at``). ``pools``
    maps a pool's name to its members: the scorer asks by target, and a pool's score sums
    its members' counts. Thread-safe.

    Example::

        history = LearnedHistory(config.learning, ledger.performance, pools=config.pools)
        router = Router(config, history=history)
    """

    def __init__(
        self,
        spec: LearningSpec,
        source: Callable[[], Sequence[PerformanceLike]],
        *,
        clock: Callable[[], float] = time.time,
        pools: Mapping[str, Sequence[str]] = _NO_POOLS,
    ) -> None:
        self._spec = spec
        self._source = source
        self._clock = clock
        self._pools = {name: tuple(members) for name, members in pools.items()}
        self._lock = threading.Lock()
        self._snapshot = _Snapshot()

    def score(self, instance: str, model: str, task_type: str) -> float | None:
        """0-1 for ``instance`` (or pool) running ``model`` on ``task_type``; the prior
        (``prior_success``) when no row is known for it."""
        rows = self._rows()
        names = (instance, *self._pools.get(instance, ()))
        found = [row for name in names for row in rows.get((name, model, task_type), ())]
        if not found:
            return self._spec.prior_success
        now = self._clock()
        tally = Tally()
        for row in found:
            tally.add(row, decay(now - row.updated_at, self._spec.half_life_s))
        return blended_score(tally, self._spec)

    def refresh(self) -> None:
        """Read ``source`` on the next :meth:`score`, whatever ``refresh_s`` says."""
        self._snapshot = _Snapshot(self._snapshot.rows, read_at=None)

    def _rows(self) -> Mapping[RowKey, Sequence[PerformanceLike]]:
        """The current rows, read again first when due. Only the first read makes callers
        wait; later ones happen on one thread while the others use the previous rows."""
        snapshot = self._snapshot
        if not self._due(snapshot):
            return snapshot.rows
        first = snapshot.read_at is None and not snapshot.rows
        if self._lock.acquire(blocking=first):
            try:
                if self._due(self._snapshot):  # another thread may have just read
                    self._read()
            finally:
                self._lock.release()
        return self._snapshot.rows

    def _due(self, snapshot: _Snapshot) -> bool:
        if snapshot.read_at is None:
            return True
        return self._clock() - snapshot.read_at >= self._spec.refresh_s

    def _read(self) -> None:
        now = self._clock()
        try:
            rows = index_rows(self._source())
        # Any failure of the source (ledger down, a driver error not yet translated) must
        # leave routing on the last rows: learning is advisory, routing is not.
        except Exception as exc:
            log.warning("learned performance not refreshed, keeping the last rows: %s", exc)
            self._snapshot = _Snapshot(self._snapshot.rows, read_at=now)
            return
        self._snapshot = _Snapshot(rows, read_at=now)
