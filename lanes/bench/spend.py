"""Does the ledger's spend match what the provider billed?

The simulator counts what every served call is billed for (``billed:<model>:*`` tokens per
instance); the ledger counts every call that started: settled calls at their real cost, calls
whose worker died mid-call at their reservation. The two agree within one reservation per
call that never settled: that call was billed (or not) for at most its reservation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lanes.kernel.config import Config
from lanes.sim import BATCH_BILLED, BILLED
from lanes.stores.ledger import Ledger


def billed_usd(config: Config, stats: dict[str, dict[str, int]]) -> float:
    """What the simulator billed, priced with the config's prices and multipliers: its
    synchronous usage at the normal rates, its batch usage at the batch rate."""
    usages: dict[tuple[str, str, bool], dict[str, int]] = {}
    for instance, counters in stats.items():
        if instance not in config.instances:
            continue
        for name, tokens in counters.items():
            batch = name.startswith(BATCH_BILLED)
            if not (batch or name.startswith(BILLED)):
                continue
            model, _, kind = name.removeprefix(BATCH_BILLED).removeprefix(BILLED).rpartition(":")
            if model in config.models:
                usage = usages.setdefault((instance, model, batch), {})
                usage[kind] = usage.get(kind, 0) + tokens
    return sum(
        config.price_usd(instance, model, usage, batch=batch)
        for (instance, model, batch), usage in usages.items()
    )


def spend_report(config: Config, ledger: Ledger, stats: dict[str, dict[str, int]],
                 since: datetime | None = None) -> dict[str, Any]:  # fmt: skip
    """Ledger spend vs billed usage, and whether the gap is within the unsettled calls'
    reservations."""
    since = since or datetime.fromtimestamp(0, UTC)
    spent = ledger.spend_since(since)
    unsettled = ledger.unsettled_since(since)
    billed = billed_usd(config, stats)
    gap = spent - billed
    return {
        "ledger_spend_usd": round(spent, 6),
        "billed_usd": round(billed, 6),
        "spend_gap_usd": round(gap, 6),
        "unsettled_calls": unsettled.calls,
        "unsettled_reserved_usd": round(unsettled.reserved_usd, 6),
        "spend_within_reservations": abs(gap) <= unsettled.reserved_usd + 1e-9,
    }
