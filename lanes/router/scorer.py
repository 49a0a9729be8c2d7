"""The weighted score: how good one surviving candidate is for one job, 0-100.

Five components, each 0-1, weighted by ``routing.weights`` (normalised by their sum):

- capability: the model's strength for the task type, its shortfall scaled by the job's
  difficulty (:func:`capability_part`);
- cost: estimated cost on a log scale across the candidates being compared; free is 1,
  the most expensive 0, and the cheapest paid one sits one decade above the floor;
- quality: the model's quality / 100;
- latency: fastest estimated latency / this latency (the fastest gets 1); the estimate is the
  model's latency plus the wait behind the target's backlog (:mod:`lanes.router.load`);
- historical: :meth:`HistoryReader.score`, 0.5 when it knows nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from lanes.kernel.config.models import Weights
from lanes.kernel.taxonomy import Complexity
from lanes.router.candidates import Candidate
from lanes.router.difficulty import level as difficulty_level
from lanes.router.lane_state import HistoryReader

LATENCY_GROWTH_PER_KTOK = 0.1
"""Estimated latency grows by this fraction of the model's latency per 1,000 output tokens."""
NEUTRAL_HISTORY = 0.5
QUALITY_FLOOR: dict[str, int] = {
    Complexity.SIMPLE: 60,
    Complexity.MEDIUM: 70,
    Complexity.COMPLEX: 80,
    Complexity.CRITICAL: 90,
}
"""The "good enough" bar by complexity, on the 0-100 scale of strengths and quality."""


def capability_floor(complexity: Complexity, difficulty: float) -> int:
    """The bar a model's strength must reach for a job, by its complexity (a level of its
    difficulty). Critical work is about stakes, not difficulty: being vital, it never
    reaches a cheap lane (and ``criticality`` sends it to the strongest model on a vital
    lane), but the bar is still set by how hard the work is."""
    if complexity is not Complexity.CRITICAL:
        return QUALITY_FLOOR[complexity]
    return QUALITY_FLOOR[difficulty_level(difficulty)]


NormalWeights = tuple[float, float, float, float, float]
"""(capability, cost, quality, latency, historical), summing to 1."""


@dataclass(slots=True)
class Option:
    """A candidate that survived the hard filters, with this job's estimates and score."""

    candidate: Candidate
    cost_usd: float
    latency_s: float
    strength: int
    """The model's strength for this job's task type, 0-100."""
    affinity: bool
    """True when the target suits the work: a vital target for vital work, any other target
    for other work. Breaks ties between equal scores."""
    wait_s: float = 0.0
    """Of ``latency_s``: the estimated wait behind the target's backlog (``lanes.router.load``)."""
    score: float = -1.0
    """0-100 once scored; -1 until then."""


def estimate_cost_usd(cand: Candidate, input_tokens: int, output_tokens: int) -> float:
    """Price of the estimated tokens on this candidate, multiplier included."""
    return input_tokens * cand.usd_per_input_token + output_tokens * cand.usd_per_output_token


def latency_factor(output_tokens: int) -> float:
    """How much longer than its typical latency a call writing ``output_tokens`` takes."""
    return 1.0 + LATENCY_GROWTH_PER_KTOK * output_tokens / 1000


def estimate_latency_s(cand: Candidate, output_tokens: int) -> float:
    """The model's typical latency, scaled mildly by the output it must write."""
    return cand.latency_s * latency_factor(output_tokens)


def patient(weights: NormalWeights) -> NormalWeights:
    """The weights for a job that is in no hurry (a batch job): the latency weight goes to
    cost. Its wait and deadline are still minded, by the strategies
    (:mod:`lanes.router.strategies.scored`)."""
    w_cap, w_cost, w_quality, w_latency, w_history = weights
    return (w_cap, w_cost + w_latency, w_quality, 0.0, w_history)


def normalize(weights: Weights) -> NormalWeights:
    """Weights scaled to sum to 1 (the Weights model guarantees a positive sum)."""
    total = (
        weights.capability + weights.cost + weights.quality + weights.latency + weights.historical
    )
    return (
        weights.capability / total,
        weights.cost / total,
        weights.quality / total,
        weights.latency / total,
        weights.historical / total,
    )


def capability_part(strength: int, difficulty: float) -> float:
    """How much of the job a model of ``strength`` (0-100) gets right, 0-1: its shortfall
    from 100 counts in proportion to the job's difficulty (0.5: the plain strength). On
    easy work every model does well enough; on hard work the shortfall doubles."""
    return max(0.0, 1.0 - (1.0 - strength / 100) * 2.0 * difficulty)


def score_options(
    targets: Sequence[Option],
    population: Sequence[Option],
    weights: NormalWeights,
    history: HistoryReader,
    task_type: str,
    difficulty: float = 0.5,
) -> None:
    """Write each target's score, normalising cost and latency over ``population``.

    ``population`` is the set the targets are compared with (usually every survivor,
    targets included); it must not be empty when targets is not.
    """
    max_cost = 0.0
    min_paid = math.inf
    min_latency = math.inf
    for opt in population:
        cost = opt.cost_usd
        if cost > max_cost:
            max_cost = cost
        if 0.0 < cost < min_paid:
            min_paid = cost
        if opt.latency_s < min_latency:
            min_latency = opt.latency_s
    log_max = math.log10(max_cost) if max_cost > 0 else 0.0
    log_floor = math.log10(min_paid / 10) if min_paid < math.inf else log_max - 1
    span = (log_max - log_floor) or 1.0
    w_cap, w_cost, w_quality, w_latency, w_history = weights
    for opt in targets:
        cand = opt.candidate
        cost = opt.cost_usd
        cost_part = 1.0 if cost <= 0.0 else max(0.0, (log_max - math.log10(cost)) / span)
        past = history.score(cand.target, cand.model, task_type)
        opt.score = 100.0 * (
            w_cap * capability_part(opt.strength, difficulty)
            + w_cost * cost_part
            + w_quality * cand.quality / 100
            + w_latency * min(1.0, min_latency / opt.latency_s)
            + w_history * (NEUTRAL_HISTORY if past is None else past)
        )


def rank(options: Sequence[Option], floor: int = 0) -> list[Option]:
    """Best first: options reaching ``floor`` in capability, then score, then target affinity,
    then config order."""
    return sorted(
        options,
        key=lambda o: (o.strength >= floor, o.score, o.affinity, -o.candidate.index),
        reverse=True,
    )


def capability_reason(option: Option, task_type: str) -> str:
    """'Strong capability match for code-review (95/100)' and its weaker wordings."""
    strength = option.strength
    if strength >= 90:
        label = "Strong"
    elif strength >= 80:
        label = "Good"
    elif strength >= 65:
        label = "Adequate"
    else:
        label = "Weak"
    return f"{label} capability match for {task_type} ({strength}/100)"


def cost_reason(option: Option) -> str:
    """'Estimated cost $0.0051, latency 2.8s', or 'Free: ...'; the wait behind the target's
    backlog, when there is one, is named."""
    cand = option.candidate
    latency = f"latency {option.latency_s:.1f}s"
    if option.wait_s:
        latency += f" (of which {option.wait_s:.1f}s waiting behind its backlog)"
    if option.cost_usd > 0.0:
        return f"Estimated cost ${option.cost_usd:.4f}, {latency}"
    free = f"Free: {cand.model} costs nothing on {cand.target}"
    return f"{free}, {latency}" if option.wait_s else free
