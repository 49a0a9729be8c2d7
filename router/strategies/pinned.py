"""Strategies that follow a pin: ``manual`` (the job's) and ``custom_rules`` (the config's).

A pin narrows the options (model only: every target offering it; target only: every model on
it; both: that pair) and the best weighted score among them wins. Vital work pinned to a
cheap lane is honoured, and the reasons say so.
"""

from __future__ import annotations

from kernel.errors import JobError
from router.scorer import Option, rank
from router.strategies.base import Choice, DecisionContext
from router.strategies.scored import best_for_task


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
    """The first ``routing.custom_rules`` regex matching the prompt pins; else best_for_task."""
    text = ctx.job.text()
    for i, (regex, rule) in enumerate(ctx.services.rules):
        if regex.search(text) is None:
            continue
        target = rule.instance or ctx.pins[0]
        model = rule.model or ctx.pins[1]
        ctx.pins = (target, model)
        try:
            options = ctx.in_play()
        except JobError as exc:
            raise JobError(f"custom rule {i} ({rule.pattern!r}): {exc}") from exc
        ranking = rank(ctx.require(options, " as the custom rule pins it"), ctx.floor)
        reasons = [
            f"Custom rule {i} ({rule.pattern!r}) matched the prompt",
            _pin_reason(target, model, ranking[0], ctx),
        ]
        return Choice(ranking=ranking, reasons=reasons)
    choice = best_for_task(ctx)
    choice.reasons.insert(0, "No custom rule matched the prompt; used best_for_task")
    return choice


def _pin_reason(target: str | None, model: str | None, top: Option, ctx: DecisionContext) -> str:
    if target is not None and model is not None:
        return f"Pinned to {target}/{model}"
    if model is not None:
        return f"Pinned model {model}; best target offering it: {top.candidate.target}"
    return f"Pinned to {target}; best model on it for {ctx.task_type}: {top.candidate.model}"
