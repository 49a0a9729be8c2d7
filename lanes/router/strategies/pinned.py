"""Strategies that follow a pin: ``manual`` (the job's) and ``custom_rules`` (the config's).

A pin narrows the options (model only: every target offering it; target only: every model on
it; both: that pair) and the best weighted score among them wins. Vital work never goes to a
cheap lane: the router refuses a job that pins vital work to nothing but cheap lanes, and a
custom rule that would do so is skipped (the reasons say so), as is one that would take work
pinned to a local lane off local lanes.
"""

from __future__ import annotations

from lanes.kernel.errors import JobError
from lanes.router.filters import NOT_LOCAL, VITAL_ON_CHEAP
from lanes.router.scorer import Option, rank
from lanes.router.strategies.base import Choice, DecisionContext
from lanes.router.strategies.scored import best_for_task


def manual(ctx: DecisionContext) -> Choice:
    """The best option the job's pins (``instance`` and/or ``model``) allow."""
    target, model = ctx.pins
    if target is None and model is None:
        raise JobError(
            "strategy 'manual' needs a pin: set the job's instance (or pool) and/or model"
        )
    ranking = rank(ctx.require(ctx.in_play(), " as pinned"), ctx.floor)
    return Choice(ranking=ranking, reasons=[_pin_reason(target, model, ranking[0], ctx)])


def custom_rules(ctx: DecisionContext) -> Choice:
    """The first ``routing.custom_rules`` regex matching the prompt pins; else best_for_task.

    A matching rule that would send vital work to nothing but cheap lanes is skipped.
    """
    text = ctx.job.text()
    skipped: list[str] = []
    for i, (regex, rule) in enumerate(ctx.services.rules):
        if regex.search(text) is None:
            continue
        target = rule.instance or ctx.pins[0]
        model = rule.model or ctx.pins[1]
        label = f"Custom rule {i} ({rule.pattern!r})"
        try:
            cands = ctx.table.pinned(target, model)
        except JobError as exc:
            raise JobError(f"custom rule {i} ({rule.pattern!r}): {exc}") from exc
        if ctx.classification.vital and cands and all(cand.cheap for cand in cands):
            lanes = ", ".join(dict.fromkeys(cand.target for cand in cands))
            skipped.append(f"{label} matched but pins cheap lane {lanes}: {VITAL_ON_CHEAP}")
            continue
        if cands and not any(ctx.demand.allows(cand.target) for cand in cands):
            skipped.append(f"{label} matched but pins {cands[0].target}: {NOT_LOCAL}")
            continue
        ctx.pins = (target, model)
        ranking = rank(ctx.require(ctx.consider(cands), " as the custom rule pins it"), ctx.floor)
        reasons = [f"{label} matched the prompt", _pin_reason(target, model, ranking[0], ctx)]
        return Choice(ranking=ranking, reasons=[*skipped, *reasons])
    choice = best_for_task(ctx)
    fallback = "No usable custom rule" if skipped else "No custom rule matched the prompt"
    choice.reasons[:0] = [*skipped, f"{fallback}; used best_for_task"]
    return choice


def _pin_reason(target: str | None, model: str | None, top: Option, ctx: DecisionContext) -> str:
    if target is not None and model is not None:
        return f"Pinned to {target}/{model}"
    if model is not None:
        return f"Pinned model {model}; best target offering it: {top.candidate.target}"
    return f"Pinned to {target}; best model on it for {ctx.task_type}: {top.candidate.model}"
