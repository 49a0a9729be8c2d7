"""``lanes bench budget``."""

from __future__ import annotations

import typer

from lanes.bench.cli.group import bench_app
from lanes.cli.app import print_result, progress, state


@bench_app.command("budget")
def budget(
    ctx: typer.Context,
    dispatchers: int = typer.Option(50, "--dispatchers", min=1, help="Dispatcher processes."),
    budget_usd: float = typer.Option(1.0, "--budget", min=0.01, help="Daily budget in USD."),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="max_tokens of each job."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Many dispatcher processes spend against one small daily budget until it refuses them;
    how far the spend went over (bar: at most one request's reservation) and how close to
    the limit it got (bar: 95%)."""
    from lanes.bench.budget import BudgetSettings, run_budget

    settings = BudgetSettings(dispatchers=dispatchers, budget_usd=budget_usd,
                              max_tokens=max_tokens)  # fmt: skip
    with progress(as_json) as show:
        result = run_budget(state(ctx).config(), settings, show)
    print_result(result, as_json)
    if not (result["within_one_reservation"] and result["spent_to_the_limit"]):
        raise typer.Exit(1)
