"""``lanes compare``: one job on several lanes or models, side by side."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from lanes.cli.app import app, console, foreign, print_json, state


@app.command()
def compare(
    ctx: typer.Context,
    text: str = typer.Argument(..., help="The prompt."),
    targets: str = typer.Option(
        ..., "--lanes", help="Comma-separated lanes or lane:model, e.g. claude1,zai,koala."
    ),
    system: str | None = typer.Option(None, "--system"),
    max_tokens: int = typer.Option(1024, "--max-tokens", min=1),
    vital: bool | None = typer.Option(
        None, "--vital/--not-vital", help="Vital work is refused on cheap lanes (exit 2)."
    ),
    timeout_s: float = typer.Option(600.0, "--timeout", min=0.1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run the same job on several lanes or models at once; outputs side by side with latency,
    tokens and cost."""
    from lanes.client import Lanes
    from lanes.recipes.compare import compare as run_compare
    from lanes.recipes.compare import parse_targets

    config = state(ctx).config()
    chosen = parse_targets(config, targets)
    job: dict[str, Any] = {"prompt": text, "system": system, "max_tokens": max_tokens,
                           "vital": vital}  # fmt: skip
    with Lanes.connect(config) as lanes:
        result = run_compare(lanes, job, chosen, timeout_s=timeout_s)
    data = result.to_json()
    if as_json:
        print_json(data)
    else:
        console.print(side_by_side(data))
    if any(run["status"] == "timeout" for run in data["runs"]):
        raise typer.Exit(7)
    if any(run["status"] != "ok" for run in data["runs"]):
        raise typer.Exit(6)


def side_by_side(data: dict[str, Any]) -> Table:
    """One column per target: its row's figures on top, its text (or error) below."""
    runs = data["runs"]
    table = Table(title="lanes compare", show_lines=True)
    table.add_column("", style="bold", no_wrap=True)
    for run in runs:
        table.add_column(foreign(run["target"]), ratio=1)
    for name, cells in (
        ("lane/model", [f"{r['lane']}/{r['model']}" for r in runs]),
        ("status", [r["status"] + marks(r) for r in runs]),
        ("latency", [f"{r['latency_s']:.2f}s" for r in runs]),
        ("tokens in/out", [f"{r['input_tokens']}/{r['output_tokens']}" for r in runs]),
        ("cost (USD)", [f"{r['cost_usd']:.6f}" for r in runs]),
        ("output", [r["text"] or r["error"] or "" for r in runs]),
    ):
        table.add_row(name, *(foreign(cell) for cell in cells))
    if data.get("calls_in_flight"):
        table.caption = in_flight_note(data["calls_in_flight"])
    return table


def marks(row: dict[str, Any]) -> str:
    """What a job's row (:mod:`lanes.recipes.rows`) would hide in its figures: answered from
    the response cache (no call, cost 0: what it saved) and answered by the provider
    simulator (filler text)."""
    found = []
    if row["cached"]:
        found.append(f"cached, saved ${row['cost_saved_usd']:.6f}")
    if row["simulated"]:
        found.append("simulated")
    return f" ({'; '.join(found)})" if found else ""


def in_flight_note(calls: int) -> str:
    return (
        f"{calls} provider call(s) of cancelled jobs were already running: they finish and are"
        " billed (see lanes cost)"
    )
