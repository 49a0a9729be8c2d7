"""``lanes bench savings``."""

from __future__ import annotations

import typer

from lanes.bench.cli.group import bench_app
from lanes.cli.app import print_result, progress, state


@bench_app.command("savings")
def savings(
    ctx: typer.Context,
    jobs: int = typer.Option(1000, "--jobs", min=1, help="Jobs of the research batch."),
    reviews: int = typer.Option(10, "--reviews", min=1, help="Reviews of the review arms."),
    diff_tokens: int = typer.Option(40_000, "--diff-tokens", min=100, help="Tokens per diff."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """What the batch API and the prompt cache save against plain calls, same run: research
    batch cost (bar: at most 0.55x) and review input cost (bar: at most 0.45x); every job
    answered once and the ledger's spend equal to the simulator's bill in every arm."""
    from lanes.bench.savings import (
        BATCH_COST_BAR,
        CACHE_INPUT_COST_BAR,
        SavingsSettings,
        run_savings,
    )

    settings = SavingsSettings(jobs=jobs, reviews=reviews, diff_tokens=diff_tokens)
    with progress(as_json) as show:
        result = run_savings(state(ctx).config(), settings, show)
    print_result(result, as_json)
    passed = (
        result["batch_cost_ratio"] <= BATCH_COST_BAR
        and result["cache_input_cost_ratio"] <= CACHE_INPUT_COST_BAR
        and result["answered_exactly_once"]
        and result["spend_matches_bill"]
    )
    if not passed:
        raise typer.Exit(1)
