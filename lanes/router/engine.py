"""The decision engine: classify a job, filter and score the candidates, let a strategy choose.

Example::

    router = Router(load_config())
    decision = router.decide(Job(prompt="Review this diff: ...", task_type="code-review"))
    decision.instance, decision.model, decision.reasons

Everything static (candidates, prices, strengths, compiled rules) is computed once in the
constructor; a decision is a loop over about a dozen candidates. A Router is safe to share
between threads when its lane state, history and counter are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial

from lanes.kernel.config.models import Config, Weights
from lanes.kernel.errors import JobError, NoRoute
from lanes.kernel.patterns import compile_safe
from lanes.kernel.taxonomy import Classification
from lanes.router.candidates import CHEAP_TAG, Candidate, CandidateTable, build_candidates
from lanes.router.classifier import classify as default_classify
from lanes.router.decision import Decision
from lanes.router.decision_cache import DecisionCache, cache_key
from lanes.router.filters import (
    DEFAULT_MIN_HEALTH,
    VITAL_ON_CHEAP,
    Demand,
    instance_problem,
    local_targets,
    summarize,
    target_problem,
    target_reasons,
    vital_tier,
)
from lanes.router.job import Job
from lanes.router.lane_state import (
    HistoryReader,
    LaneStateReader,
    LaneStatus,
    NoHistory,
    StaticLaneState,
)
from lanes.router.load import target_load
from lanes.router.scorer import (
    NormalWeights,
    Option,
    capability_reason,
    cost_reason,
    normalize,
)
from lanes.router.strategies import (
    Choice,
    DecisionContext,
    HookLoader,
    LocalCounter,
    RotationCounter,
    Services,
    get_strategy,
)
from lanes.router.strategies.chains import chain_name, chain_options

Classifier = Callable[[Job], Classification]
MAX_ALTERNATIVES = 5
CERTAIN_MARGIN = 10.0
"""A lead of this many score points over the runner-up counts as a clear choice."""
WAITS_REASON = (
    "every lane that can take this job is cooling down: it waits on its queue until one is "
    "free (at most retry.max_wait_s)"
)
UNCACHED_STRATEGIES = frozenset({"round_robin"})
"""Strategies whose answer must change from one identical job to the next."""


class Router:
    """Decides where jobs go under one Config.

    ``lane_state`` (default: everything healthy) says which instances are usable now;
    ``history`` (default: nothing known) feeds the historical score; ``counter`` (default:
    in-process) drives round_robin; ``clock`` (seconds, monotonic) drives the decision cache,
    which is on when ``routing.cache_ttl_s > 0``.
    """

    def __init__(
        self,
        config: Config,
        *,
        lane_state: LaneStateReader | None = None,
        history: HistoryReader | None = None,
        classifier: Classifier | None = None,
        counter: RotationCounter | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_health: float = DEFAULT_MIN_HEALTH,
    ) -> None:
        self.config = config
        self.table: CandidateTable = build_candidates(config)
        self._local = local_targets(self.table, config)
        self._tier = vital_tier(config)
        self._lane_state: LaneStateReader = lane_state or StaticLaneState()
        threshold = config.routing.vital_threshold
        self._classifier = classifier or partial(default_classify, vital_threshold=threshold)
        self._min_health = min_health
        self._weights: NormalWeights = normalize(config.routing.weights)
        rules = [(compile_safe(rule.pattern), rule) for rule in config.routing.custom_rules]
        self._services = Services(
            history=history or NoHistory(),
            counter=counter or LocalCounter(),
            hook=HookLoader(config.routing.hook),
            rules=tuple(rules),
        )
        ttl_s = config.routing.cache_ttl_s
        self._cache = DecisionCache(ttl_s, clock=clock) if ttl_s > 0 else None

    def classify(self, job: Job) -> Classification:
        """What the classifier concludes about ``job``."""
        return self._classifier(job)

    def strategy_for(self, job: Job, strategy: str | None = None) -> str:
        """The strategy name a decision uses: the job's, else ``strategy``, else ``manual``
        for a pinned job, else ``routing.strategy``. JobError for an unknown name."""
        name = job.strategy or strategy
        if name is None:
            pinned = job.instance is not None or job.model is not None
            name = "manual" if pinned else self.config.routing.strategy
        get_strategy(name)
        return name

    def decide(
        self,
        job: Job,
        *,
        strategy: str | None = None,
        weights: Weights | None = None,
        blocked_models: frozenset[str] = frozenset(),
    ) -> Decision:
        """Where ``job`` goes.

        ``strategy`` applies unless the job names its own; ``weights`` replace
        ``routing.weights`` for this call (performance_optimized uses weights of its own);
        ``blocked_models`` may not be chosen (a budget alert's ``block_expensive_models``).
        Vital work never has a cheap lane anywhere in its decision, not even while cooldowns
        are waived. JobError for a bad job (unknown strategy, lane, model or chain; a prompt
        no context window can hold; vital work pinned to nothing but cheap lanes), NoRoute
        when no candidate survives the filters, ConfigError for a broken hook or custom rule.
        """
        name = self.strategy_for(job, strategy)
        key = None
        if self._cache is not None and name not in UNCACHED_STRATEGIES:
            key = (cache_key(job, name, weights), blocked_models)
            cached = self._cache.get(key)
            if cached is not None and self._target_usable(cached.instance):
                return cached
        classification = self._classifier(job)
        self.check_size(job, classification)
        chain_name(job, self.config)
        # a bad pin is refused before any read
        classification, warning = self._check_pins(job, classification)
        statuses = self._lane_state.statuses(list(self.table.instances))
        try:
            decision = self._choose(job, name, weights, classification, statuses, blocked_models,
                                    waive=False)  # fmt: skip
        except NoRoute:
            if not any(status.cooldown_s > 0 for status in statuses.values()):
                raise
            # Only cooldowns stand in the way, and they end by themselves: route as if they
            # were over and let the job wait on its queue (not cached: it is a stopgap).
            decision = self._choose(job, name, weights, classification, statuses, blocked_models,
                                    waive=True)  # fmt: skip
            return decision.model_copy(update={"reasons": [*decision.reasons, WAITS_REASON]})
        if warning is not None:
            decision = decision.model_copy(update={"reasons": [warning, *decision.reasons]})
        if key is not None and self._cache is not None:
            self._cache.put(key, decision)
        return decision

    def _choose(
        self,
        job: Job,
        name: str,
        weights: Weights | None,
        classification: Classification,
        statuses: Mapping[str, LaneStatus],
        blocked_models: frozenset[str],
        *,
        waive: bool,
    ) -> Decision:
        problems = target_reasons(
            self.table, self.config, statuses, self._min_health, waive_cooldowns=waive
        )
        load = target_load(self.config, self.table, statuses, classification.input_tokens,
                           classification.output_tokens)  # fmt: skip
        ctx = DecisionContext(
            config=self.config,
            table=self.table,
            job=job,
            classification=classification,
            target_problems=problems,
            demand=Demand.of(
                job, classification, blocked_models, self._local_only(job), self._tier, load
            ),
            weights=normalize(weights) if weights is not None else self._weights,
            services=self._services,
            pins=(job.instance, job.model),
        )
        return _assemble(ctx, name, get_strategy(name)(ctx))

    def _local_only(self, job: Job) -> frozenset[str] | None:
        """The local lanes, for a job pinned to one: every step of its decision must be one
        (no strategy, chain, rule or hook may take it elsewhere); else None."""
        return self._local if job.instance in self._local else None

    def check_size(self, job: Job, classification: Classification) -> None:
        window, model = self.table.largest_window
        if classification.input_tokens + job.max_tokens > window:
            raise JobError(
                f"prompt is {classification.input_tokens:,} tokens + max_tokens "
                f"{job.max_tokens:,}; the largest context window is {window:,} (model {model})"
            )

    def _check_pins(self, job: Job, clf: Classification) -> tuple[Classification, str | None]:
        """JobError for a pin naming an unknown lane or model, or one that leaves vital work
        nothing but cheap lanes. Work vital on ``p_vital`` alone keeps such a pin: the
        caller named the lane, no cue named stakes. Its classification then loses the vital
        mark and the decision gains a warning saying how to refuse such a pin
        (``vital: true``)."""
        if job.instance is None and job.model is None:
            return clf, None
        cands = self.table.pinned(job.instance, job.model)
        if not (clf.vital and cands and all(cand.cheap for cand in cands)):
            return clf, None
        if not clf.vital_learned:
            raise JobError(cheap_pin_refusal(job, clf, cands))
        lanes = ", ".join(dict.fromkeys(cand.target for cand in cands))
        warning = (
            f"Warning: the job pins cheap lane {lanes} and p_vital {clf.p_vital:.2f} reaches "
            f"{clf.vital_threshold:g} ({clf.vital_reason}); no cue names stakes, so the pin "
            'wins: set "vital": true on the job to keep such work off cheap lanes'
        )
        update = {"vital": False, "vital_reason": None, "vital_learned": False}
        return clf.model_copy(update=update), warning

    def _target_usable(self, target_name: str) -> bool:
        target = self.table.targets.get(target_name)
        if target is None:
            return False
        statuses = self._lane_state.statuses(list(target.members))
        problems = {
            name: instance_problem(self.config, name, status, self._min_health)
            for name, status in statuses.items()
        }
        return target_problem(target, problems) is None


def cheap_pin_refusal(job: Job, clf: Classification, cands: Sequence[Candidate]) -> str:
    """Why a vital job pinned to cheap lanes is refused, and the two ways out."""
    targets = list(dict.fromkeys(cand.target for cand in cands))
    lanes = ", ".join(targets)
    if job.instance is not None:
        pin = f"the job pins cheap lane {lanes}"
    elif len(targets) == 1:
        pin = f"the job pins model {job.model}, which only cheap lane {lanes} offers"
    else:
        pin = f"the job pins model {job.model}, which only cheap lanes {lanes} offer"
    why = clf.vital_reason or "the classifier judged it vital"
    return (
        f"{pin}, but the job is vital ({why}) and {VITAL_ON_CHEAP}; pin a lane without the "
        f"'{CHEAP_TAG}' tag, or accept cheap lanes for it: \"vital\": false on the job"
        " (--not-vital on the command line)"
    )


def _assemble(ctx: DecisionContext, strategy: str, choice: Choice) -> Decision:
    ranking = choice.ranking
    top = ranking[0]
    cand = top.candidate
    clf = ctx.classification
    runner_up = next((o.score for o in ranking[1:] if o.candidate.model != cand.model), None)
    chain = [
        {"instance": o.candidate.target, "model": o.candidate.model}
        for o in chain_options(ctx, choice)
    ]
    rejections = ctx.rejections()
    reasons = [
        _classified(clf),
        *choice.reasons,
        *_local_reason(ctx),
        *_below_tier_warning(ctx, cand),
        capability_reason(top, clf.type.value),
        cost_reason(top),
        *summarize(rejections, ctx.table),
    ]
    return Decision(
        instance=cand.target,
        pool=cand.pool,
        model=cand.model,
        strategy=strategy,
        confidence=confidence(top.score, runner_up, clf.confidence),
        estimated_cost_usd=top.cost_usd,
        estimated_latency_s=top.latency_s,
        estimated_wait_s=round(top.wait_s, 3),
        alternatives=[_alternative(o) for o in ranking[1 : MAX_ALTERNATIVES + 1]],
        chain=chain,  # dicts: Decision validates them faster than it takes models
        reasons=reasons,
        rejections=rejections,
        classification=clf,
    )


def _below_tier_warning(ctx: DecisionContext, cand: Candidate) -> list[str]:
    """A warning when the job pins vital work to a model below the vital tier: the pin wins."""
    tier = vital_tier(ctx.config)
    if tier is None or not ctx.classification.vital or cand.quality >= tier.quality:
        return []
    return [
        f"Warning: the job pins model {cand.model} for vital work; "
        f"{tier.refusal(cand.quality)}. The pin wins: unpin the model to get the tier"
    ]


def _local_reason(ctx: DecisionContext) -> list[str]:
    if ctx.demand.local_only is None:
        return []
    lanes = ", ".join(sorted(ctx.demand.local_only))
    return [
        f"Local only: the job is pinned to local lane {ctx.job.instance}, so every step of its"
        f" chain is a local lane ({lanes})"
    ]


def confidence(best: float, runner_up: float | None, classification_confidence: float) -> float:
    """0-100: how clearly the choice leads, times how sure the classifier is.

    ``runner_up`` is the score of the best option with another model (the same model on
    another lane is no rival). A lead of ``CERTAIN_MARGIN`` points, or no runner-up, is a
    clear choice; a tie keeps half. A classifier confidence of 0 halves the result again.
    """
    lead = 1.0 if runner_up is None else min(1.0, max(0.0, best - runner_up) / CERTAIN_MARGIN)
    return round(100.0 * (0.5 + 0.5 * lead) * (0.5 + 0.5 * classification_confidence), 1)


def _alternative(option: Option) -> dict[str, str | float]:
    cand = option.candidate
    return {"instance": cand.target, "model": cand.model, "score": round(option.score, 2),
            "wait_s": round(option.wait_s, 3)}  # fmt: skip


def _classified(clf: Classification) -> str:
    return (
        f"Classified as {clf.type.value} ({clf.complexity.value}, difficulty "
        f"{clf.difficulty:.2f}, {clf.pattern.value}, {vital_text(clf)}; "
        f"~{clf.input_tokens:,} tokens in, ~{clf.output_tokens:,} out)"
    )


def vital_text(clf: Classification) -> str:
    """'vital (security: 'injection')', 'vital' or 'not vital'."""
    if not clf.vital:
        return "not vital"
    return f"vital ({clf.vital_reason})" if clf.vital_reason else "vital"
