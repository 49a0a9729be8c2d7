"""``lanes demo``: bring up the topology, fan a code review of a sample diff out, show a table.

Each review is placed by the ``criticality`` strategy (see :mod:`lanes.recipes.review.run`); the
table says
which lane and model took it and the rule that sent it there. With ``--flower`` the stack and
Flower stay up after the table, so the review's tasks can be looked at.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from lanes.client import Lanes
from lanes.kernel.config import Config, SimMode
from lanes.ops.stack import Stack
from lanes.recipes.review.run import SAMPLE_DIFF, collect, fan_out
from lanes.workers.providers import is_simulated

DEMO_COLUMNS = ("reviewer", "lane", "model", "rule", "status", "input_tokens", "output_tokens",
                "cost_usd", "latency_s", "cached", "cost_saved_usd", "simulated")  # fmt: skip


def real_lanes(config: Config) -> list[str]:
    """Lanes that will call their real provider (their API key is set)."""
    return [lane for lane in config.lanes() if not is_simulated(config, lane)]


def demo_providers_line(config: Config, real: list[str]) -> str:
    """Which lanes call a real provider, and if none, why."""
    if real:
        return f"real providers for: {', '.join(real)}"
    if config.simulator.mode is SimMode.ALWAYS:
        return "simulator.mode is always: every lane talks to the local provider simulator"
    return "no API keys set: every lane talks to the local provider simulator"


def review_rows(stack: Stack, timeout_s: float = 120.0) -> list[dict[str, Any]]:
    """The sample diff's review, fanned out on ``stack`` (up and ready): one row a reviewer."""
    diff = SAMPLE_DIFF.read_text(encoding="utf-8")
    with Lanes(stack.config, stack.redis_url) as lanes:
        handles = fan_out(lanes, diff)
        return collect(lanes, handles, timeout_s)


def demo_table(rows: list[dict[str, Any]]) -> Table:
    """One line per reviewer: where it ran (``(simulated)`` when the lane talked to the local
    provider simulator), the rule that put it there, what it cost (``(cached)``: answered from
    the response cache)."""
    table = Table(title="lanes demo: code review of lanes/data/sample.diff")
    for col in ("reviewer", "lane", "model", "status"):
        table.add_column(col, no_wrap=True)
    for col in ("in tok", "out tok", "cost (USD)", "latency"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("why (routing rule)", ratio=1)
    for row in rows:
        style = "green" if row["status"] == "ok" else "red"
        status = f"{row['status']} (cached)" if row.get("cached") else row["status"]
        lane = f"{row['lane']} (simulated)" if row.get("simulated") else str(row["lane"])
        table.add_row(
            row["reviewer"],
            escape(lane),
            str(row["model"]),
            f"[{style}]{status}[/]",
            str(row["input_tokens"]),
            str(row["output_tokens"]),
            f"{row['cost_usd']:.6f}",
            f"{row['latency_s']:.2f}s",
            escape(row["rule"]),
        )
    total = sum(r["cost_usd"] for r in rows)
    saved = sum(r.get("cost_saved_usd", 0.0) for r in rows)
    table.caption = f"total cost ${total:.6f}" + (
        f"; ${saved:.6f} saved by the response cache" if saved else ""
    )
    if any(r.get("simulated") for r in rows):
        table.caption += (
            "; lanes marked (simulated) answered from the local provider simulator:"
            " their text is filler, not a model's review"
        )
    return table


def demo_json(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"jobs": [{k: row.get(k) for k in DEMO_COLUMNS} for row in rows]}
