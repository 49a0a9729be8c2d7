"""What every strategy works with: the per-decision context, the choice it returns, counters.

A strategy is a plain function ``(ctx: DecisionContext) -> Choice``. It asks the context for
the options in play (hard filters applied, scored, pins honoured), orders them, and says why.
The context memoises every evaluation, so asking twice costs a dict lookup.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from lanes.kernel.config.models import Config, CustomRule, Weights
from lanes.kernel.errors import NoRoute
from lanes.kernel.patterns import SafePattern
from lanes.kernel.taxonomy import Classification
from lanes.router.candidates import Candidate, CandidateTable
from lanes.router.filters import Demand, evaluate
from lanes.router.hooks import HookLoader
from lanes.router.job import Job
from lanes.router.lane_state import HistoryReader
from lanes.router.scorer import (
    NormalWeights,
    Option,
    capability_floor,
    normalize,
    patient,
    score_options,
)

CompiledRule = tuple[SafePattern, CustomRule]


class RotationCounter(Protocol):
    """A counter shared by whoever must rotate together (a process, or every dispatcher)."""

    def next(self, key: str) -> int:
        """The next value (0, 1, 2, ...) of the counter named ``key``."""
        ...


class LocalCounter:
    """In-process rotation: one itertools counter per key, safe across threads."""

    def __init__(self) -> None:
        self._counters: dict[str, itertools.count[int]] = {}
        self._lock = threading.Lock()

    def next(self, key: str) -> int:
        with self._lock:
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = itertools.count()
            return next(counter)


@dataclass(slots=True)
class Choice:
    """A strategy's answer: options best first (the first is the decision) and why."""

    ranking: list[Option]
    reasons: list[str]
    chain: list[Option] | None = None
    """The fallback chain when the strategy fixes it itself (fallback_chain), else None."""


Strategy = Callable[["DecisionContext"], Choice]


@dataclass
class Services:
    """The long-lived helpers a Router hands every decision."""

    history: HistoryReader
    counter: RotationCounter
    hook: HookLoader
    rules: Sequence[CompiledRule]


@dataclass
class DecisionContext:
    """Everything one decision reads and what it learns on the way.

    ``target_problems`` maps every target to why it is unusable now (None when usable).
    """

    config: Config
    table: CandidateTable
    job: Job
    classification: Classification
    target_problems: Mapping[str, str | None]
    demand: Demand
    weights: NormalWeights
    services: Services
    pins: tuple[str | None, str | None] = (None, None)
    """(target, model) the options in play must match; from the job or a custom rule."""
    _memo: dict[int, tuple[Option | None, str | None]] = field(
        default_factory=dict, init=False, repr=False
    )
    """Filter outcome by candidate index: (option, None) or (None, reason)."""
    _considered: dict[str, str | None] = field(default_factory=dict, init=False, repr=False)
    """Candidates a strategy looked at, in order, with their rejection reason or None."""
    _survivors: list[Option] | None = field(default=None, init=False, repr=False)

    @property
    def floor(self) -> int:
        """The good-enough bar (0-100) for this job's complexity."""
        clf = self.classification
        return capability_floor(clf.complexity, clf.difficulty)

    @property
    def task_type(self) -> str:
        return self.classification.type.value

    def use_weights(self, weights: Weights) -> None:
        """Score with ``weights`` from now on (as given: no lean by difficulty); call
        before asking for options."""
        self.weights = normalize(weights)
        self._survivors = None
        for option, _ in self._memo.values():
            if option is not None:
                option.score = -1.0

    def survivors(self) -> list[Option]:
        """Every routable candidate that passes the filters, scored; pins not applied."""
        if self._survivors is None:
            options = []
            memo = self._memo
            problems = self.target_problems
            demand = self.demand
            for cand in self.table.routable:
                found = memo.get(cand.index)
                if found is None:
                    problem = problems[cand.target]
                    found = (None, problem) if problem is not None else evaluate(cand, demand)
                    memo[cand.index] = found
                if found[1] is None and found[0] is not None:
                    options.append(found[0])
            self._score(options, options)
            self._survivors = options
        return self._survivors

    def consider(self, cands: Iterable[Candidate]) -> list[Option]:
        """The surviving options among ``cands``, scored against every survivor.

        Every candidate considered shows up in the decision's rejections if it failed.
        """
        population = self.survivors()
        out: list[Option] = []
        for cand in cands:
            option, reason = self._evaluate(cand)
            if option is not None and reason is None:
                out.append(option)
            self._considered[cand.key] = reason
        fresh = [o for o in out if o.score < 0]
        if fresh:
            self._score(fresh, [*population, *fresh])
        return out

    def in_play(self) -> list[Option]:
        """The options a strategy chooses among: every survivor, or those the pins allow."""
        target, model = self.pins
        if target is None and model is None:
            survivors = self.survivors()
            for cand in self.table.routable:
                self._considered[cand.key] = self._memo[cand.index][1]
            return list(survivors)
        return self.consider(self.table.pinned(target, model))

    def reject(self, key: str, reason: str) -> None:
        """Record a rejection no filter made (a chain step naming a model its target lacks)."""
        self._considered.setdefault(key, reason)

    def rejections(self) -> dict[str, str]:
        """``"target/model" -> reason`` for every considered candidate that was rejected."""
        return {key: reason for key, reason in self._considered.items() if reason is not None}

    def require(self, options: list[Option], what: str = "") -> list[Option]:
        """``options`` when not empty; else NoRoute listing every rejection."""
        if options:
            return options
        job_kind = f"{self.task_type} job"
        raise NoRoute(
            f"no instance or pool can take this {job_kind}{what}: every candidate was rejected",
            self.rejections(),
        )

    def _evaluate(self, cand: Candidate) -> tuple[Option | None, str | None]:
        found = self._memo.get(cand.index)
        if found is None:
            problem = self.target_problems.get(cand.target)
            found = (None, problem) if problem is not None else evaluate(cand, self.demand)
            self._memo[cand.index] = found
        return found

    def _score(self, targets: Sequence[Option], population: Sequence[Option]) -> None:
        score_options(
            targets,
            population,
            patient(self.weights) if self.demand.patient else self.weights,
            self.services.history,
            self.demand.task_type,
            self.classification.difficulty,
        )
