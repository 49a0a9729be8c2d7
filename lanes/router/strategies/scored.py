"""Strategies that order the options by what they know of them: score, cost, quality.

- ``best_for_task``: the weighted score, options reaching the capability floor for the job's
  complexity first (a complex job does not go to a weak model because it is free);
- ``cost_optimized``: the cheapest option whose quality meets the floor, ties by score;
- ``performance_optimized``: strength + quality, then latency; cost ignored;
- ``criticality``: by what a mistake would cost. Vital work goes to a lane tagged ``vital``
  first, on the cheapest model whose strength for the task type reaches ``VITAL_FLOOR``
  (critical work: the highest-quality model); other lanes (never a cheap one) follow.
  Other work goes to the cheapest option whose strength reaches the floor for its
  complexity, the rest after it.

Each of them minds time, after its own order (:func:`keeps_time`):

- a job with a deadline (``deadline_s``) that the option ranked first is expected to miss
  (model latency plus the wait behind its lane's backlog) goes to the first option expected
  to make it: a batch a cheap lane cannot finish in time spills to a dearer acceptable lane,
  and only then;
- a job without one waits behind a lane's backlog no longer than its call would take beyond
  the shortest wait among the acceptable options: a batch spreads over the lanes as they
  fill, so no lane drains long after the others, and cost decides among the lanes that can
  start it about as soon.

"Acceptable" is reaching the capability floor; the options moved ahead keep the strategy's
order. When none qualifies, the ranking stands and the reasons say so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from lanes.kernel.config.models import Weights
from lanes.kernel.taxonomy import Complexity
from lanes.router.scorer import QUALITY_FLOOR, Option, rank
from lanes.router.strategies.base import Choice, DecisionContext, Strategy

PERFORMANCE_WEIGHTS = Weights(capability=0.5, cost=0.0, quality=0.5, latency=0.0, historical=0.0)
"""Scores shown for performance_optimized: the mean of strength and quality."""
VITAL_FLOOR = QUALITY_FLOOR[Complexity.CRITICAL]
"""The capability vital work must reach whatever its complexity: a mistake there is costly."""
_NO_VITAL_LANE = "has no usable vital lane among its options, so goes to a lane that is not cheap"


def keeps_time(strategy: Strategy) -> Strategy:
    """``strategy`` with the job's deadline kept, or with no needless wait (see the module's
    docstring)."""

    @functools.wraps(strategy)
    def on_time(ctx: DecisionContext) -> Choice:
        choice = strategy(ctx)
        first = choice.ranking[0]
        deadline = ctx.demand.deadline_s
        if deadline is not None:
            if first.latency_s <= deadline:
                return choice
            return _move_ahead(ctx, choice, lambda o: o.latency_s <= deadline,
                               f"Deadline {deadline:g}s")  # fmt: skip
        if not first.wait_s:
            return choice
        acceptable = [o for o in choice.ranking if o.strength >= ctx.floor] or choice.ranking
        least = min(o.wait_s for o in acceptable)
        if first.wait_s <= least + _call_s(first):
            return choice
        why = f"Backlog: an acceptable lane can start it in {least:.1f}s"
        return _move_ahead(ctx, choice, lambda o: o.wait_s <= least + _call_s(o), why)

    return on_time


def _call_s(option: Option) -> float:
    """The option's estimated call, its wait left out."""
    return option.latency_s - option.wait_s


def _move_ahead(
    ctx: DecisionContext, choice: Choice, fits: Callable[[Option], bool], why: str
) -> Choice:
    """The options that ``fits`` and reach the capability floor first, in the strategy's
    order; the ranking as it was, with a reason, when there are none."""
    first = choice.ranking[0]
    late = f"{first.candidate.key} is expected to take {first.latency_s:.1f}s"
    in_time = [o for o in choice.ranking if fits(o) and o.strength >= ctx.floor]
    if not in_time:
        reason = f"{why}: no acceptable option is expected to do better; {late}"
        return Choice(choice.ranking, [*choice.reasons, reason], choice.chain)
    moved = {id(o) for o in in_time}
    rest = [o for o in choice.ranking if id(o) not in moved]
    took = in_time[0]
    reason = f"{why}: {late}, so took {took.candidate.key} (expected {took.latency_s:.1f}s)"
    return Choice([*in_time, *rest], [*choice.reasons, reason], choice.chain)


@keeps_time
def best_for_task(ctx: DecisionContext) -> Choice:
    """The highest weighted score among options reaching the capability floor."""
    floor = ctx.floor
    ranking = rank(ctx.require(ctx.in_play()), floor)
    top = ranking[0]
    reasons = [_score_reason(ranking)]
    complexity = ctx.classification.complexity.value
    below = sum(1 for o in ranking if o.strength < floor)
    if top.strength < floor:
        reasons.append(
            f"No candidate reaches capability {floor} for {complexity} work; took the best score"
        )
    elif below:
        reasons.append(
            f"{below} candidate(s) below capability {floor} for {complexity} "
            f"{ctx.task_type} work rank after the rest"
        )
    return Choice(ranking=ranking, reasons=reasons)


@keeps_time
def cost_optimized(ctx: DecisionContext) -> Choice:
    """The cheapest option whose quality meets the floor for the job's complexity."""
    options = ctx.require(ctx.in_play())
    floor = ctx.floor
    meeting = [o for o in options if o.candidate.quality >= floor]
    if not meeting:
        ranking = sorted(options, key=_quality_first)
        reason = (
            f"No candidate meets quality {floor} for {ctx.classification.complexity} work; "
            "took the highest quality"
        )
        return Choice(ranking=ranking, reasons=[reason])
    cheapest = sorted(meeting, key=_cheapest_first)
    rest = rank([o for o in options if o.candidate.quality < floor], floor)
    reason = (
        f"Cheapest candidate meeting quality {floor} "
        f"(the floor for {ctx.classification.complexity} work)"
    )
    return Choice(ranking=cheapest + rest, reasons=[reason])


@keeps_time
def performance_optimized(ctx: DecisionContext) -> Choice:
    """The best strength + quality for the task type, then the lowest latency."""
    ctx.use_weights(PERFORMANCE_WEIGHTS)
    options = ctx.require(ctx.in_play())
    ranking = sorted(
        options,
        key=lambda o: (
            -(o.strength + o.candidate.quality),
            o.latency_s,
            not o.affinity,
            o.candidate.index,
        ),
    )
    top = ranking[0]
    reason = (
        f"Best capability + quality for {ctx.task_type}: {top.strength} + "
        f"{top.candidate.quality}, cost ignored"
    )
    return Choice(ranking=ranking, reasons=[reason])


@keeps_time
def criticality(ctx: DecisionContext) -> Choice:
    """Vital work to a vital lane; other work to the cheapest lane strong enough for it."""
    if ctx.classification.vital:
        return _vital(ctx)
    return _not_vital(ctx)


def _not_vital(ctx: DecisionContext) -> Choice:
    """The cheapest option reaching the floor for the job's complexity, then the rest."""
    floor = ctx.floor
    ranking = _cheapest_reaching(ctx.require(ctx.in_play()), floor)
    task = ctx.task_type
    if ranking[0].strength >= floor:
        reason = (
            "Criticality: non-vital work goes to the cheapest lane reaching capability "
            f"{floor} for {task}"
        )
    else:
        reason = (
            f"Criticality: non-vital work, but no candidate reaches capability {floor} for "
            f"{task}: took the best score"
        )
    return Choice(ranking=ranking, reasons=[reason])


def _vital(ctx: DecisionContext) -> Choice:
    """Options on vital lanes first (cheap ones are filtered out already), then the others;
    each group cheapest-reaching-``VITAL_FLOOR`` first, or highest quality for critical work."""
    options = ctx.require(ctx.in_play())
    on_vital = [o for o in options if o.candidate.vital_target]
    elsewhere = [o for o in options if not o.candidate.vital_target]
    bar = max(ctx.floor, VITAL_FLOOR)
    if ctx.classification.complexity == Complexity.CRITICAL:
        ranking = sorted(on_vital, key=_quality_first) + sorted(elsewhere, key=_quality_first)
        rule = "the highest-quality model, as the work is critical"
    else:
        ranking = _cheapest_reaching(on_vital, bar) + _cheapest_reaching(elsewhere, bar)
        rule = f"cheapest model reaching capability {bar} for {ctx.task_type}"
        if ranking[0].strength < bar:
            rule = (
                f"no model there reaches capability {bar} for {ctx.task_type}: took the best score"
            )
    why = ctx.classification.vital_reason
    what = f"vital work ({why})" if why else "vital work"
    where = "goes to a vital lane" if ranking[0].candidate.vital_target else _NO_VITAL_LANE
    return Choice(ranking=ranking, reasons=[f"Criticality: {what} {where}: {rule}"])


def _cheapest_reaching(options: list[Option], floor: int) -> list[Option]:
    """The options whose strength reaches ``floor``, cheapest first; then the rest by score."""
    strong = sorted((o for o in options if o.strength >= floor), key=_cheapest_first)
    return strong + rank([o for o in options if o.strength < floor], floor)


def _cheapest_first(o: Option) -> tuple[float, float, bool, int]:
    return (o.cost_usd, -o.score, not o.affinity, o.candidate.index)


def _quality_first(o: Option) -> tuple[int, bool, float, int]:
    return (-o.candidate.quality, not o.affinity, -o.score, o.candidate.index)


def _score_reason(ranking: list[Option]) -> str:
    top = ranking[0]
    text = f"Best weighted score {top.score:.1f}/100 of {len(ranking)} candidates"
    runner = next((o for o in ranking[1:] if o.candidate.model != top.candidate.model), None)
    if runner is not None:
        text += f" (best other model: {runner.candidate.key} at {runner.score:.1f})"
    return text
