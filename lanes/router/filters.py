"""Hard filters: what rules a candidate out before any scoring, each with a readable reason.

Target checks (switched off in config, disabled, cooling down, unhealthy) run once per target per
decision; a pool passes while at least one member is usable. Candidate checks run in this
order and the first failure is the reason: a lane that is not local for work pinned to a local
lane (see :data:`NOT_LOCAL`), vital work on a cheap lane (see :data:`VITAL_ON_CHEAP`; nothing
waives either), vital work on a model below the vital tier (``routing.vital_min_model``; a job
that pins its model waives it, with a warning in the decision), a feature the job needs
(tools, images, documents), context window, output limit, the job's constraints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lanes.kernel.config.models import Config
from lanes.kernel.taxonomy import Classification, Priority
from lanes.router.candidates import CHEAP_TAG, Candidate, CandidateTable, Target
from lanes.router.job import Job
from lanes.router.lane_state import LaneStatus
from lanes.router.load import TargetLoad
from lanes.router.scorer import Option, latency_factor

DEFAULT_MIN_HEALTH = 0.25
"""An instance whose health (0-1) is below this is not routed to."""
VITAL_ON_CHEAP = "vital work never goes to a cheap lane"
"""Why a candidate on a target tagged ``cheap`` is rejected for vital work, always."""
VITAL_TIER_KEY = "routing.vital_min_model"
LOCAL_TAG = "local"
NOT_LOCAL = "not a local lane, and work pinned to a local lane never leaves local lanes"
"""Why a candidate is rejected for a job pinned to a local lane, always."""


def target_reasons(
    table: CandidateTable,
    config: Config,
    statuses: Mapping[str, LaneStatus],
    min_health: float,
    *,
    waive_cooldowns: bool = False,
) -> dict[str, str | None]:
    """Why each target cannot take work right now, or None when it can.

    ``waive_cooldowns`` counts a cooling-down instance as usable: a cooldown ends by itself,
    and a job sent to it waits on its queue (bounded by ``retry.max_wait_s``).
    """
    if waive_cooldowns:
        statuses = {name: status.without_cooldown() for name, status in statuses.items()}
    problems = {
        name: instance_problem(config, name, status, min_health)
        for name, status in statuses.items()
    }
    if not any(problems.values()):
        return dict.fromkeys(table.targets)
    return {name: target_problem(target, problems) for name, target in table.targets.items()}


def instance_problem(
    config: Config, name: str, status: LaneStatus, min_health: float
) -> str | None:
    """Why one instance is unusable (config switch, disabled, cooldown, health), or None."""
    if not config.instances[name].enabled:
        return "switched off in config (enabled: false)"
    if status.disabled_reason is not None:
        return f"disabled: {status.disabled_reason}"
    if status.cooldown_s > 0:
        return f"cooling down for {status.cooldown_s:.0f}s more"
    if status.health < min_health:
        return f"health {status.health:.2f} is below {min_health:.2f}"
    return None


def target_problem(target: Target, problems: Mapping[str, str | None]) -> str | None:
    """Why ``target`` is unusable given each member's problem; a pool needs one usable member."""
    if target.pool is None:
        return problems.get(target.name)
    member_problems = [(m, problems.get(m)) for m in target.members]
    if any(problem is None for _, problem in member_problems):
        return None
    detail = "; ".join(f"{m} {problem}" for m, problem in member_problems)
    return f"no usable member in pool {target.name} ({detail})"


def local_targets(table: CandidateTable, config: Config) -> frozenset[str]:
    """Targets that are local lanes: an instance tagged ``local``, or a pool whose members all
    are (a pool mixing local and other lanes is not local: the dispatcher may pick any
    member)."""
    return frozenset(
        name
        for name, target in table.targets.items()
        if all(LOCAL_TAG in config.instances[member].tags for member in target.members)
    )


@dataclass(frozen=True, slots=True)
class Tier:
    """The least a model must be for vital work: the ``quality`` of the model that
    ``routing.vital_min_model`` names."""

    model: str
    quality: int

    def refusal(self, quality: int) -> str:
        return (
            f"quality {quality} is below the tier vital work needs ({self.model}, quality"
            f" {self.quality}: {VITAL_TIER_KEY})"
        )


def vital_tier(config: Config) -> Tier | None:
    """The vital tier of ``config``, or None when it sets no floor (or its default names a
    model the config does not define)."""
    name = config.routing.vital_min_model
    if name is None or name not in config.models:
        return None
    return Tier(name, config.models[name].quality)


def vital_refusal(config: Config, instance: str, model: str) -> str | None:
    """Why routing never sends vital work to ``model`` on ``instance`` unpinned (a cheap lane,
    a model below the vital tier, one the config no longer defines), or None when it may."""
    if instance not in config.instances or model not in config.models:
        return f"{instance}/{model} is not in the config"
    if CHEAP_TAG in config.instances[instance].tags:
        return VITAL_ON_CHEAP
    tier = vital_tier(config)
    quality = config.models[model].quality
    if tier is not None and quality < tier.quality:
        return tier.refusal(quality)
    return None


@dataclass(frozen=True, slots=True)
class Demand:
    """What one job asks of every candidate, read once per decision."""

    input_tokens: int
    output_tokens: int
    max_tokens: int
    task_type: str
    vital: bool
    latency_factor: float
    min_quality: int | None
    max_latency_s: float | None
    max_cost_usd: float | None
    blocked_models: frozenset[str] = frozenset()
    """Models a budget alert (``block_expensive_models``) refuses for now."""
    local_only: frozenset[str] | None = None
    """The only targets allowed (the local lanes) when the job is pinned to a local lane."""
    tier: Tier | None = None
    """What vital work needs at least (None: no floor, or the job pins its model)."""
    load: TargetLoad = field(default_factory=TargetLoad)
    """Each target's wait before the job's call starts, and its models' measured latency."""
    deadline_s: float | None = None
    """Seconds from submit within which the caller wants the result (None: no deadline)."""
    patient: bool = False
    """A batch job: scored with :func:`lanes.router.scorer.patient`."""
    needs: frozenset[str] = frozenset()
    """What the model must take besides text (tools, images, documents)."""

    @classmethod
    def of(
        cls,
        job: Job,
        clf: Classification,
        blocked_models: frozenset[str] = frozenset(),
        local_only: frozenset[str] | None = None,
        tier: Tier | None = None,
        load: TargetLoad | None = None,
    ) -> Demand:
        limits = job.constraints
        return cls(
            input_tokens=clf.input_tokens,
            output_tokens=clf.output_tokens,
            max_tokens=job.max_tokens,
            task_type=clf.type.value,
            vital=clf.vital,
            latency_factor=latency_factor(clf.output_tokens),
            min_quality=limits.min_quality,
            max_latency_s=limits.max_latency_s,
            max_cost_usd=limits.max_cost_usd,
            blocked_models=blocked_models,
            local_only=local_only,
            tier=tier if clf.vital and job.model is None else None,
            load=load or TargetLoad(),
            deadline_s=job.deadline_s,
            patient=job.priority == Priority.BATCH,
            needs=job.features(),
        )

    def allows(self, target: str) -> bool:
        """Whether ``target`` may take the job at all: any target, or for a job pinned to a
        local lane only a local lane."""
        return self.local_only is None or target in self.local_only


def check(cand: Candidate, d: Demand) -> str | None:
    """The first static reason ``cand`` cannot take the job (cost excluded)."""
    if not d.allows(cand.target):
        return NOT_LOCAL
    if d.vital and cand.cheap:
        return VITAL_ON_CHEAP
    if d.tier is not None and cand.quality < d.tier.quality:
        return d.tier.refusal(cand.quality)
    missing = d.needs - cand.features
    if missing:
        return (
            f"{cand.model} cannot take {' or '.join(sorted(missing))}, which the job sends"
            f" (models.{cand.model}.features)"
        )
    if cand.model in d.blocked_models:
        return f"{cand.model} is blocked while a budget is near its limit (block_expensive_models)"
    needed = d.input_tokens + d.max_tokens
    if needed > cand.context_window:
        return (
            f"needs {needed:,} tokens of context ({d.input_tokens:,} in + max_tokens "
            f"{d.max_tokens:,}); the window of {cand.model} is {cand.context_window:,}"
        )
    if d.max_tokens > cand.max_output_tokens:
        return (
            f"max_tokens {d.max_tokens:,} exceeds the {cand.max_output_tokens:,}-token "
            f"output limit of {cand.model}"
        )
    if d.min_quality is not None and cand.quality < d.min_quality:
        return f"quality {cand.quality} is below min_quality {d.min_quality}"
    if d.max_latency_s is not None and cand.latency_s > d.max_latency_s:
        return f"typical latency {cand.latency_s:.1f}s exceeds max_latency_s {d.max_latency_s:g}"
    return None


def evaluate(cand: Candidate, d: Demand) -> tuple[Option | None, str | None]:
    """Estimate and filter one candidate whose target is usable.

    Returns ``(option, None)`` when it survives, ``(None, reason)`` when it is rejected.
    """
    reason = check(cand, d)
    if reason is not None:
        return None, reason
    cost = d.input_tokens * cand.usd_per_input_token + d.output_tokens * cand.usd_per_output_token
    if d.max_cost_usd is not None and cost > d.max_cost_usd:
        return None, f"estimated cost ${cost:.4f} exceeds max_cost_usd ${d.max_cost_usd:g}"
    wait_s = d.load.wait_s(cand.target)
    option = Option(
        candidate=cand,
        cost_usd=cost,
        latency_s=d.load.latency_s(cand.target, cand.model, cand.latency_s) * d.latency_factor
        + wait_s,
        wait_s=wait_s,
        strength=cand.strengths[d.task_type],
        affinity=cand.vital_target == d.vital,
    )
    return option, None


def summarize(rejections: Mapping[str, str], table: CandidateTable) -> list[str]:
    """One line per target when all its rejected models share a reason, else one per candidate:
    'zai rejected: vital work never goes to a cheap lane'."""
    by_target: dict[str, list[tuple[str, str]]] = {}
    for key, reason in rejections.items():
        target = key.split("/", 1)[0]
        by_target.setdefault(target, []).append((key, reason))
    lines: list[str] = []
    for target, items in by_target.items():
        reasons = {reason for _, reason in items}
        whole_target = target in table.targets and len(items) == len(table.targets[target].models)
        if whole_target and len(reasons) == 1:
            lines.append(f"{target} rejected: {items[0][1]}")
        else:
            lines.extend(f"{key} rejected: {reason}" for key, reason in items)
    return lines
