"""Strategies that order the options by what they know of them: score, cost, quality.

- ``best_for_task``: the weighted score, options reaching the capability floor for the job's
  complexity first (a complex job does not go to a weak model because it is free);
- ``cost_optimized``: the cheapest option whose quality meets the floor, ties by score;
- ``performance_optimized``: strength + quality, then latency; cost ignored;
- ``criticality``: by complexity, simple -> cost_optimized, medium -> best_for_task,
  complex -> best_for_task with quality-heavy weights, critical -> the highest-quality
  model on a vital or premium lane.
"""

from __future__ import annotations

from kernel.config.models import Weights
from kernel.taxonomy import Complexity
from router.candidates import PREMIUM_TAG, VITAL_TAG
from router.scorer import Option, rank
from router.strategies.base import Choice, DecisionContext

PERFORMANCE_WEIGHTS = Weights(capability=0.5, cost=0.0, quality=0.5, latency=0.0, historical=0.0)
"""Scores shown for performance_optimized: the mean of strength and quality."""
QUALITY_HEAVY_WEIGHTS = Weights(
    capability=0.40, cost=0.05, quality=0.35, latency=0.10, historical=0.10
)
TOP_TIER_TAGS = frozenset({VITAL_TAG, PREMIUM_TAG})


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


def criticality(ctx: DecisionContext) -> Choice:
    """Pick by complexity: the more critical the work, the more quality counts."""
    complexity = ctx.classification.complexity
    if complexity == Complexity.SIMPLE:
        choice = cost_optimized(ctx)
        lead = "Criticality: simple work goes to the cheapest good-enough candidate"
    elif complexity == Complexity.MEDIUM:
        choice = best_for_task(ctx)
        lead = "Criticality: medium work takes the best weighted score"
    elif complexity == Complexity.COMPLEX:
        ctx.use_weights(QUALITY_HEAVY_WEIGHTS)
        choice = best_for_task(ctx)
        lead = "Criticality: complex work is scored with quality-heavy weights"
    else:
        choice = _critical(ctx)
        lead = "Criticality: critical work takes the highest-quality model on a vital/premium lane"
    choice.reasons.insert(0, lead)
    return choice


def _critical(ctx: DecisionContext) -> Choice:
    ctx.use_weights(QUALITY_HEAVY_WEIGHTS)
    options = ctx.require(ctx.in_play())
    top_tier = [o for o in options if o.candidate.tags & TOP_TIER_TAGS]
    if not top_tier:
        choice = best_for_task(ctx)
        choice.reasons.insert(0, "No vital or premium lane is usable; used quality-heavy weights")
        return choice
    best = sorted(top_tier, key=_quality_first)
    rest = rank([o for o in options if not o.candidate.tags & TOP_TIER_TAGS], ctx.floor)
    top = best[0]
    reason = (
        f"Highest quality on a vital/premium lane: {top.candidate.model} ({top.candidate.quality})"
    )
    return Choice(ranking=best + rest, reasons=[reason])


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
