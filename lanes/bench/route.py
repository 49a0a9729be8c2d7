"""``lanes bench route``: classify + decide over a fixed corpus, in process; time and cost."""

from __future__ import annotations

import gc
import math
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from lanes.kernel.config import Config
from lanes.router.decision import Decision
from lanes.router.engine import Router
from lanes.router.job import Job

DEFAULT_WARMUP = 300
DEFAULT_PASSES = 3


def premium_target(config: Config) -> tuple[str, str]:
    """(instance, model): the most expensive model by output price, on the first enabled
    instance offering it. What "send everything to the best model" would cost."""
    offered = [
        (config.models[model].price.output_per_mtok, -i, name, model)
        for i, (name, spec) in enumerate(config.instances.items())
        if spec.enabled
        for model in spec.models
    ]
    _, _, instance, model = max(offered)
    return instance, model


def measure_routing(
    config: Config,
    jobs: Sequence[Job],
    *,
    warmup: int = DEFAULT_WARMUP,
    passes: int = DEFAULT_PASSES,
    labels: Sequence[bool | None] | None = None,
) -> dict[str, Any]:
    """Time ``Router.decide`` (which classifies) per job after ``warmup`` untimed decisions,
    and price the routed workload against sending it all to :func:`premium_target`; count
    the vital jobs and those whose decision names a cheap lane anywhere (must be 0).
    With ``labels`` (each job's true vital, None where unknown): :func:`labelled_figures`.

    Every job is decided in ``passes`` passes over the corpus and keeps its fastest time, so
    a thread descheduled by a busy machine is not counted as routing time (``timeit``'s rule).
    The decision cache is off, so every pass does the whole work.
    """
    routing = config.routing.model_copy(update={"cache_ttl_s": 0.0})
    router = Router(config.model_copy(update={"routing": routing}))
    for i in range(min(warmup, len(jobs))):
        router.decide(jobs[i])
    runs = [_time_pass(router, jobs) for _ in range(max(1, passes))]
    timings_ns = sorted(min(times) for times in zip(*(ns for ns, _ in runs), strict=True))
    instance, model = premium_target(config)
    cheap = router.table.cheap_targets()
    routed_usd = 0.0
    premium_usd = 0.0
    vital = vital_on_cheap = 0
    for decision in runs[-1][1]:
        routed_usd += decision.estimated_cost_usd
        clf = decision.classification
        if clf is not None:
            usage = {"input_tokens": clf.input_tokens, "output_tokens": clf.output_tokens}
            premium_usd += config.price_usd(instance, model, usage)
            if clf.vital:
                vital += 1
                vital_on_cheap += touches(decision, cheap)
    figures: dict[str, Any] = {
        "decisions": len(timings_ns),
        "p50_ms": round(_percentile(timings_ns, 0.50) / 1e6, 4),
        "p99_ms": round(_percentile(timings_ns, 0.99) / 1e6, 4),
        "routed_cost_usd": round(routed_usd, 4),
        "all_premium_cost_usd": round(premium_usd, 4),
        "savings": round(1 - routed_usd / premium_usd, 4) if premium_usd > 0 else 0.0,
        "vital_jobs": vital,
        "vital_on_cheap_lane": vital_on_cheap,
    }
    if labels is not None and any(v is not None for v in labels):
        figures |= labelled_figures(runs[-1][1], labels, cheap)
    return figures


def labelled_figures(
    decisions: Sequence[Decision], labels: Sequence[bool | None], cheap: frozenset[str]
) -> dict[str, Any]:
    """For the jobs labelled vital: how many, how many the router left a cheap lane
    anywhere in the decision (``labelled_vital_touching_cheap``), and the model each starts
    on (``labelled_vital_first_model``)."""
    vital = [d for d, label in zip(decisions, labels, strict=True) if label]
    first = Counter(d.model for d in vital)
    return {
        "labelled_vital": len(vital),
        "labelled_vital_touching_cheap": sum(touches(d, cheap) for d in vital),
        "labelled_vital_first_model": dict(first.most_common()),
    }


def touches(decision: Decision, cheap: frozenset[str]) -> bool:
    """True if the decision names a cheap lane anywhere: first, in its chain, among the
    alternatives."""
    named = {decision.instance, *(s.instance for s in decision.chain)}
    named |= {a.instance for a in decision.alternatives}
    return bool(named & cheap)


def _time_pass(router: Router, jobs: Sequence[Job]) -> tuple[list[int], list[Decision]]:
    """Nanoseconds of one ``decide`` per job, and the decisions, in corpus order."""
    gc.collect()
    timings_ns = []
    decisions = []
    for job in jobs:
        start = time.perf_counter_ns()
        decisions.append(router.decide(job))
        timings_ns.append(time.perf_counter_ns() - start)
    return timings_ns, decisions


def _percentile(sorted_values: Sequence[int], fraction: float) -> float:
    """Nearest-rank percentile of an ascending, non-empty sequence."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return float(sorted_values[rank - 1])
