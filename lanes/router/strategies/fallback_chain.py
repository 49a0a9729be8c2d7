"""``fallback_chain``: the first usable step of the job's chain or ``routing.default_chain``."""

from __future__ import annotations

from lanes.kernel.errors import JobError
from lanes.router.strategies.base import Choice, DecisionContext
from lanes.router.strategies.chains import chain_name, resolve_chain


def fallback_chain(ctx: DecisionContext) -> Choice:
    """The first step of the chain that passes the filters; the chain is the usable steps."""
    name = chain_name(ctx.job, ctx.config)
    if name is None:
        chains = ", ".join(ctx.config.fallback_chains) or "none configured"
        raise JobError(
            "strategy 'fallback_chain' needs a chain: set the job's chain or "
            f"routing.default_chain (chains: {chains})"
        )
    steps = ctx.require(resolve_chain(ctx, name), f" on chain {name!r}")
    reasons = [f"First usable step of fallback chain {name!r}: {steps[0].candidate.key}"]
    if any(pin is not None for pin in (ctx.job.instance, ctx.job.model)):
        reasons.append("The job's pins are ignored: the chain decides")
    return Choice(ranking=steps, reasons=reasons, chain=steps)
