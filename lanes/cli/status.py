"""``lanes status``."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lanes.cli.app import app, console, err_console, foreign, print_json, state
from lanes.kernel.config import Config


@app.command()
def status(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="One JSON object.")
) -> None:
    """Per lane: limits (also per model), capacity available now, cooldown, health, queue
    depth, workers, and whether the lane is consumed (the liveness canary)."""
    from lanes.deployment import open_deployment
    from lanes.ops.status import batch_status, lane_status, ledger_status

    with open_deployment(state(ctx).config()) as deployment:
        rows = lane_status(deployment)
        ledger = ledger_status(deployment)
        batches = batch_status(deployment)
    if as_json:
        print_json({"lanes": rows, "ledger": ledger, "batches": batches})
    else:
        console.print(status_table(rows))
        if ledger is not None:
            console.print(ledger_line(ledger))
        if batches["open"] or batches["gathering"]:
            console.print(batch_line(batches))


_LEDGER_STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def batch_line(batches: dict[str, Any]) -> Text:
    """The provider batches under the table: open ones and the jobs gathering."""
    opened = batches["open"]
    jobs = sum(batch["jobs"] for batch in opened)
    gathering = sum(batches["gathering"].values())
    return Text(f"batches: {len(opened)} open ({jobs} jobs), {gathering} jobs gathering")


def ledger_line(ledger: dict[str, Any]) -> Text:
    """The drainers' verdict under the table, with the fix when something is wrong."""
    line = Text("ledger: ") + foreign(ledger["detail"], _LEDGER_STYLES[ledger["status"]])
    if ledger["fix"]:
        line += Text(" (") + foreign(ledger["fix"]) + Text(")")
    return line


def status_table(rows: list[dict[str, Any]]) -> Table:
    """The rows of :func:`lanes.ops.status.lane_status` as a table: one line per lane, then one
    dimmed line per model with limits of its own (its limits and what its buckets hold)."""
    table = Table(title="lanes status")
    columns = ("lane", "RPM", "tokens/min in/out", "requests left", "cooldown", "health")
    for col in (*columns, "queued", "backlog (drain)", "workers", "consuming"):
        table.add_column(col, no_wrap=True)
    for row in rows:
        state_text = (
            foreign(f"disabled: {row['disabled']}", "red") if row["disabled"]
            else foreign(f"{row['cooldown_s']:.1f}s", "yellow") if row["cooldown_s"] > 0
            else "-"
        )  # fmt: skip
        table.add_row(
            row["lane"],
            *_limit_cells(row["limits"], row["available_now"]),
            state_text,
            f"{row['health']:.2f}",
            str(row["queue_depth"]),
            _backlog_cell(row),
            foreign(", ".join(row["workers"])) if row["workers"] else "[red]none[/]",
            _consuming_cell(row),
        )
        for model, model_row in row.get("model_limits", {}).items():
            cells = _limit_cells(model_row["limits"], model_row["available_now"])
            table.add_row(f"  └ {escape(model)}", *cells, "", "", "", "", "", "", style="dim")
    return table


def _backlog_cell(row: dict[str, Any]) -> str:
    """'12 (~9s)': unfinished jobs on the lane and the time its limits need to start them."""
    backlog, drain = row["backlog"], row["drain_s"]
    if not backlog:
        return "0"
    return f"{backlog} (~{drain:g}s)" if drain is not None else str(backlog)


def _consuming_cell(row: dict[str, Any]) -> Text | str:
    """The liveness canary's verdict: yes, NOT CONSUMING (with why), or - before any canary."""
    if row.get("consuming") is None:
        return "-"
    if row["consuming"]:
        return "yes"
    return foreign(str(row.get("liveness", "not consuming")), "bold red")


def _limit_cells(limits: dict[str, int], available_now: dict[str, Any]) -> tuple[str, str, str]:
    """RPM, input/output tokens per minute and requests left, ``∞`` where unlimited."""
    left = available_now["requests"]
    input_per_min = _per_min(limits["input_tokens_per_min"])
    output_per_min = _per_min(limits["output_tokens_per_min"])
    requests_left = "∞" if left is None else f"{left:.0f}"
    return _per_min(limits["requests_per_min"]), f"{input_per_min}/{output_per_min}", requests_left


def _per_min(value: int) -> str:
    """A per-minute limit, short: ``∞`` for 0 (unlimited), ``450k``, ``1.5M``."""
    if not value:
        return "∞"
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 10_000:
        return f"{value / 1000:g}k"
    return str(value)


@app.command()
def reset(
    ctx: typer.Context,
    lanes: list[str] = typer.Argument(None, help="Lanes to reset (default: all)."),
    cache: bool = typer.Option(False, "--cache", help="Empty the response cache instead."),
    stats: bool = typer.Option(
        False,
        "--stats",
        help="Forget recorded decisions, outcomes, "
        "events and learned performance instead (costs are kept).",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask first."),
) -> None:
    """Clear cooldowns, disabled flags and health history of lanes (after fixing a key); with
    --cache or --stats, empty the response cache or the learned statistics (asks first)."""
    st = state(ctx)
    config = st.config()
    if cache or stats:
        if lanes:
            raise typer.BadParameter("--cache and --stats take no lane names")
        _reset_books(config, cache=cache, stats=stats, yes=yes)
        return
    chosen = st.lanes(lanes)
    from lanes.deployment import open_deployment

    with open_deployment(config) as deployment:
        for lane in chosen:
            deployment.stores.lane_state.clear(lane)
    console.print(f"reset: {', '.join(chosen)}")


def _reset_books(config: Config, *, cache: bool, stats: bool, yes: bool) -> None:
    what = " and ".join(
        part for part, on in (("the response cache", cache),
                              ("the recorded statistics (costs are kept)", stats)) if on
    )  # fmt: skip
    if not yes and not typer.confirm(f"Empty {what}?", default=False):
        console.print("nothing changed")
        raise typer.Exit(1)
    if cache:
        from lanes.deployment import open_deployment

        with open_deployment(config) as deployment:
            removed = deployment.stores.cache.clear()
        console.print(f"response cache emptied: {removed} answer(s) removed")
    if stats:
        from lanes.ops.ledger_view import books

        with books(config, warn=lambda m: err_console.print(f"[yellow]{m}[/]")) as ledger:
            ledger.reset_stats()
        console.print("statistics forgotten: decisions, outcomes, events, learned performance")
