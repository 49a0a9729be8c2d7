"""Reading the ledger: ``lanes cost``, ``stats``, ``fallback``, ``export`` and ``feedback``.

Every read command takes ``--json``. An unreachable database exits 5; a bad argument exits 2.
Names in the tables (budgets, projects, lanes, models, reasons) are shown as written:
through :func:`~lanes.cli.app.foreign`, never read as rich markup or ``:emoji:`` codes.
"""

from __future__ import annotations

import csv
import sys
import time
from datetime import UTC, datetime
from functools import partial
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from lanes.cli.app import app, console, err_console, foreign, print_json, state

NONE = "\u2013"
"""What a table shows where there is no value (JSON: null)."""
PERIOD_HELP = "day, week or month: the current calendar period in budgets.timezone."


def _warn(message: str) -> None:
    err_console.print(foreign(message, "yellow"))


def _period(value: str) -> str:
    from lanes.ops.reports import PERIODS

    if value not in PERIODS:
        raise typer.BadParameter(f"{value!r} is not a period; use one of {', '.join(PERIODS)}")
    return value


def _since(ctx: typer.Context, period: str) -> tuple[datetime, datetime]:
    from lanes.ops.reports import period_start

    now = datetime.now(UTC)
    return period_start(period, now, state(ctx).config().budgets.timezone), now


@app.command()
def cost(
    ctx: typer.Context,
    period: str = typer.Option("month", "--period", callback=_period, help=PERIOD_HELP),
    by: str = typer.Option("model", "--by", help="model, instance, project or task-type."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object."),
) -> None:
    """Spend by model, instance, project or task type, a monthly projection and downgrade
    suggestions from the recorded outcomes."""
    from lanes.ops.ledger_view import books
    from lanes.ops.reports import GROUPINGS, downgrades, monthly_projection
    from lanes.router.filters import vital_refusal

    if by not in GROUPINGS:
        raise typer.BadParameter(f"{by!r}: use one of {', '.join(GROUPINGS)}", param_hint="--by")
    since, now = _since(ctx, period)
    config = state(ctx).config()
    with books(config, warn=_warn) as ledger:
        lines = ledger.costs(since, by)
        discounts = ledger.discounts(since)
        window_days = max((now - since).total_seconds() / 86400, 1 / 24)
        refusal = partial(vital_refusal, config)
        advice = downgrades(ledger.task_outcomes(since), window_days, refusal)
    total = sum(line.cost_usd for line in lines)
    report = {
        "period": period,
        "since": since.isoformat(),
        "by": by,
        "total_usd": total,
        "saved_by_cache_usd": sum(line.saved_usd for line in lines),
        "batched_jobs": discounts.batched_jobs,
        "saved_by_batch_api_usd": discounts.batch_saved_usd,
        "saved_by_prompt_cache_usd": discounts.prompt_cache_saved_usd,
        "projected_month_usd": monthly_projection(total, since, now),
        "lines": [line.model_dump() for line in lines],
        "suggestions": [{**vars(a), "text": a.sentence()} for a in advice],
    }
    if as_json:
        print_json(report)
        return
    _print_cost(report)


def _print_cost(report: dict[str, Any]) -> None:
    table = Table(title=f"cost this {report['period']} by {report['by']}")
    for col in (report["by"], "calls", "cost $", "unsettled $", "saved by cache $"):
        table.add_column(col, no_wrap=True)
    for line in report["lines"]:
        table.add_row(foreign(line["key"]), str(line["calls"]), f"{line['cost_usd']:.4f}",
                      f"{line['unsettled_usd']:.4f}", f"{line['saved_usd']:.4f}")  # fmt: skip
    console.print(table)
    console.print(f"total ${report['total_usd']:.4f}; projected "
                  f"${report['projected_month_usd']:.2f} per 30 days")  # fmt: skip
    console.print(f"saved ${report['saved_by_batch_api_usd']:.4f} through the batch API"
                  f" ({report['batched_jobs']} jobs), ${report['saved_by_prompt_cache_usd']:.4f}"
                  " by the prompt cache (reads less write premiums)")  # fmt: skip
    for advice in report["suggestions"]:
        console.print(Text("suggestion: ") + foreign(advice["text"]))


@app.command()
def stats(
    ctx: typer.Context,
    period: str = typer.Option("month", "--period", callback=_period, help=PERIOD_HELP),
    as_json: bool = typer.Option(False, "--json", help="One JSON object."),
) -> None:
    """Decisions, success rate, p50/p95 latency and fallback rate per lane and model."""
    from lanes.ops.ledger_view import books

    since, _ = _since(ctx, period)
    with books(state(ctx).config(), warn=_warn) as ledger:
        rows = ledger.stats(since)
    if as_json:
        print_json({"period": period, "since": since.isoformat(),
                    "lanes": [r.model_dump() for r in rows]})  # fmt: skip
        return
    table = Table(title=f"lanes stats this {period}")
    for col in ("lane", "model", "decisions", "ended", "success", "p50 s", "p95 s", "fallback",
                "429s", "cost $"):  # fmt: skip
        table.add_column(col, no_wrap=True)
    for r in rows:
        table.add_row(
            foreign(r.instance), foreign(r.model), str(r.decisions), str(r.outcomes),
            _or_dash(r.success_rate, "{:.0%}"), _or_dash(r.p50_latency_s, "{:.2f}"),
            _or_dash(r.p95_latency_s, "{:.2f}"), f"{r.fallback_rate:.0%}",
            str(r.rate_limits), f"{r.cost_usd:.4f}",
        )  # fmt: skip
    console.print(table)


def _or_dash(value: float | None, form: str) -> str:
    """``value`` in ``form``, or a dash where there is none (no job ended on the lane)."""
    return NONE if value is None else form.format(value)


@app.command()
def fallback(
    ctx: typer.Context,
    period: str = typer.Option("month", "--period", callback=_period, help=PERIOD_HELP),
    as_json: bool = typer.Option(False, "--json", help="One JSON object."),
) -> None:
    """The configured fallback chains and the measured fallback rates."""
    from lanes.ops.ledger_view import books

    config = state(ctx).config()
    since, _ = _since(ctx, period)
    with books(config, warn=_warn) as ledger:
        rates = ledger.fallback_rates(since)
    chains = {
        name: [f"{s.instance}/{s.model}" if s.model else s.instance for s in steps]
        for name, steps in config.fallback_chains.items()
    }
    if as_json:
        print_json({"chains": chains, "rates": [r.model_dump() for r in rates]})
        return
    for name, steps in chains.items():
        console.print(foreign(f"chain {name}: {' -> '.join(steps)}"))
    table = Table(title=f"fallbacks this {period}")
    for col in ("from", "to", "count", "rate", "last reason"):
        table.add_column(col)
    for r in rates:
        table.add_row(foreign(f"{r.from_instance}/{r.from_model}"), foreign(r.to_instance),
                      str(r.count), f"{r.rate:.0%}", foreign(r.last_reason))  # fmt: skip
    console.print(table)


@app.command()
def export(
    ctx: typer.Context,
    fmt: str = typer.Option("json", "--format", help="json or csv."),
    period: str = typer.Option("month", "--period", callback=_period, help=PERIOD_HELP),
) -> None:
    """Every job that ended in the period, with its decision, as JSON or CSV (text a
    spreadsheet would run as a formula gets a leading ')."""
    from lanes.ops.ledger_view import books
    from lanes.ops.reports import csv_cell

    if fmt not in ("json", "csv"):
        raise typer.BadParameter(f"{fmt!r}: use json or csv", param_hint="--format")
    since, _ = _since(ctx, period)
    with books(state(ctx).config(), warn=_warn) as ledger:
        rows = ledger.export(since)
    if fmt == "json":
        print_json(rows)
        return
    if rows:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({key: csv_cell(value) for key, value in row.items()} for row in rows)


@app.command()
def feedback(
    ctx: typer.Context,
    job_id: str = typer.Argument(..., help="The job's id (lanes run prints it)."),
    rating: int = typer.Option(..., "--rating", min=1, max=5, help="1 (bad) to 5 (excellent)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object."),
) -> None:
    """Rate a finished job 1-5: the rating feeds what lanes learns about its lane and model."""
    from lanes.ops.ledger_view import books

    with books(state(ctx).config(), warn=_warn) as ledger:
        ledger.rate(job_id, rating, time.time())
    if as_json:
        print_json({"job_id": job_id, "rating": rating})
    else:
        console.print(foreign(f"rated {job_id}: {rating}/5"))


SCOPE_HELP = "global, instance:NAME, project:NAME or user:NAME (with a --set-* option)."


@app.command()
def budget(
    ctx: typer.Context,
    set_daily: float = typer.Option(None, "--set-daily", help="Daily limit in USD."),
    set_monthly: float = typer.Option(None, "--set-monthly", help="Monthly limit in USD."),
    set_per_request: float = typer.Option(None, "--set-per-request", help="Per-request limit."),
    scope: str = typer.Option("global", "--scope", help=SCOPE_HELP),
    as_json: bool = typer.Option(False, "--json", help="One JSON object."),
) -> None:
    """Every budget with its spend, in-flight reservations and reset time; or set a limit
    (kept in the ledger, in force for every dispatcher within a second)."""
    from lanes.deployment import open_deployment
    from lanes.ops.ledger_view import books, budget_limit, budget_rows, save_budget
    from lanes.router.budgets import usd

    config = state(ctx).config()
    wanted = {"daily": set_daily, "monthly": set_monthly, "per_request": set_per_request}
    # Every value is checked before anything is written: one bad value saves nothing.
    limits = [budget_limit(config, f"{scope}:{period}", limit_usd)
              for period, limit_usd in wanted.items() if limit_usd is not None]  # fmt: skip
    with open_deployment(config) as deployment, books(config, warn=_warn) as ledger:
        store = deployment.stores.budget
        for limit in limits:
            save_budget(store, ledger, limit, time.time())
            err_console.print(foreign(f"budget {limit.budget_id} set to "
                                      f"{usd(limit.limit_usd)}"))  # fmt: skip
        rows = budget_rows(config, store, ledger, datetime.now(UTC))
    if as_json:
        print_json({"timezone": config.budgets.timezone, "budgets": rows})
        return
    _print_budgets(rows, config.budgets.timezone)


def _print_budgets(rows: list[dict[str, Any]], zone: str) -> None:
    from lanes.router.budgets import usd

    if not rows:
        console.print("no budget set: add budgets.limits to the config, or use --set-daily")
        return
    table = Table(title=f"budgets (resets in {zone})")
    for col in ("budget", "limit $", "spent $", "in flight $", "used", "resets at", "set by"):
        table.add_column(col, no_wrap=True)
    for row in rows:
        spent = "-" if row["spent_usd"] is None else f"{row['spent_usd']:.4f}"
        flight = "-" if row["reserved_usd"] is None else f"{row['reserved_usd']:.4f}"
        used = "-" if row["used"] is None else f"{row['used']:.0%}"
        limit = usd(row["limit_usd"]).removeprefix("$")
        table.add_row(foreign(row["budget_id"]), limit, spent, flight, used,
                      row["resets_at"] or "-", row["source"])  # fmt: skip
    console.print(table)
