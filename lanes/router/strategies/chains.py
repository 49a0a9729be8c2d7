"""Fallback chains: what the dispatcher tries, in order, when a step fails.

With a configured chain (the job's ``chain``, else ``routing.default_chain``) the decision's
chain is the chosen step followed by the configured steps, each resolved (a step without a
model takes the target's best model for the task) and dropped if the filters reject it (the
context window cannot fit, vital work on a cheap lane...). Without one, it is the chosen
option followed by the next best options on *different* targets, ``MAX_STEPS`` at most; when
every option is on one target (a pin) the next best models on that target follow instead.

For a job pinned to a local lane every step is a local lane: the filters reject every other
target (:data:`lanes.router.filters.NOT_LOCAL`), so a configured chain keeps only its local steps.
"""

from __future__ import annotations

from collections.abc import Iterable

from lanes.kernel.config.models import Config
from lanes.kernel.errors import JobError
from lanes.router.decision import Step
from lanes.router.job import Job
from lanes.router.scorer import Option, rank
from lanes.router.strategies.base import Choice, DecisionContext

MAX_STEPS = 3


def chain_name(job: Job, config: Config) -> str | None:
    """The configured chain this job follows, if any; JobError for an unknown name."""
    if job.chain is not None:
        if job.chain not in config.fallback_chains:
            chains = ", ".join(config.fallback_chains) or "none configured"
            raise JobError(f"unknown chain {job.chain!r}; choose one of: {chains}")
        return job.chain
    return config.routing.default_chain


def resolve_chain(ctx: DecisionContext, name: str) -> list[Option]:
    """The usable steps of chain ``name`` as options, in order, without repeats."""
    steps: list[Option] = []
    for step in ctx.config.fallback_chains[name]:
        if step.model is None:
            options = rank(ctx.consider(ctx.table.by_target.get(step.instance, ())), ctx.floor)
        else:
            cand = ctx.table.by_pair.get((step.instance, step.model))
            if cand is None:
                key = f"{step.instance}/{step.model}"
                ctx.reject(key, f"chain {name!r} names it but {step.instance} does not offer it")
                continue
            options = ctx.consider([cand])
        if options:
            steps.append(options[0])
    return _unique(steps)


def chain_options(ctx: DecisionContext, choice: Choice) -> list[Option]:
    """The decision's chain as options, the chosen one first."""
    chosen = choice.ranking[0]
    if choice.chain is not None:
        options = _unique([chosen, *choice.chain])
    else:
        name = chain_name(ctx.job, ctx.config)
        if name is not None:
            options = _unique([chosen, *resolve_chain(ctx, name)])
        else:
            options = spread(choice.ranking)
    return options


def build_chain(ctx: DecisionContext, choice: Choice) -> list[Step]:
    """The decision's chain of steps, the chosen option first."""
    return [
        Step(instance=o.candidate.target, model=o.candidate.model)
        for o in chain_options(ctx, choice)
    ]


def spread(ranking: list[Option], max_steps: int = MAX_STEPS) -> list[Option]:
    """The first option, then the next best on targets not used yet.

    When the ranking holds a single target, the next best models on it follow instead.
    """
    targets = {o.candidate.target for o in ranking}
    if len(targets) == 1:
        return ranking[:max_steps]
    picked: list[Option] = []
    used: set[str] = set()
    for option in ranking:
        if option.candidate.target in used:
            continue
        picked.append(option)
        used.add(option.candidate.target)
        if len(picked) == max_steps:
            break
    return picked


def _unique(options: Iterable[Option]) -> list[Option]:
    seen: set[str] = set()
    out: list[Option] = []
    for option in options:
        if option.candidate.key not in seen:
            seen.add(option.candidate.key)
            out.append(option)
    return out
