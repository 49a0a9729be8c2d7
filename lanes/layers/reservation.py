"""What one provider call may cost at most: the reservation a job's message carries, the
ledger counts a call at until it settles, and budgets hold."""

from __future__ import annotations

from lanes.kernel.config import Config

RESERVE_INPUT_FACTOR = 1.5
RESERVE_INPUT_OVERHEAD = 32
"""A reservation counts the estimated input tokens x 1.5 + 32: the estimate is ~4 characters a
token, providers differ by +-20% on prose and more on code, and each request carries some
framing tokens of its own. Output is bounded by ``max_tokens`` exactly."""


def reservation_usd(
    config: Config,
    instance: str,
    model: str,
    input_tokens: int,
    max_tokens: int,
    *,
    batch: bool = False,
) -> float:
    """The most one call of ``model`` on ``instance`` may cost: the estimated input with a
    margin (:data:`RESERVE_INPUT_FACTOR`) and all of ``max_tokens``. What a call counts as
    spent until it settles, and what budgets reserve for a job (on its first step: a job that
    falls back to a dearer step may spend more than it reserved, by at most that step's
    difference). ``batch``: at the instance's batch rate."""
    reserved_in = int(input_tokens * RESERVE_INPUT_FACTOR) + RESERVE_INPUT_OVERHEAD
    usage = {"input_tokens": reserved_in, "output_tokens": max_tokens}
    return config.price_usd(instance, model, usage, batch=batch)
