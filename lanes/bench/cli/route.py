"""``lanes bench route``: the command; the measurement is :mod:`lanes.bench.route`."""

from __future__ import annotations

import typer
from rich.table import Table

from lanes.bench.cli.group import bench_app
from lanes.bench.corpus import DEFAULT_SEED, DEFAULT_SIZE, build_corpus
from lanes.bench.route import DEFAULT_PASSES, DEFAULT_WARMUP, measure_routing
from lanes.cli.app import console, print_json, state


@bench_app.command("route")
def route_bench(
    ctx: typer.Context,
    size: int = typer.Option(DEFAULT_SIZE, "--size", min=1, help="Jobs in the corpus."),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Corpus seed."),
    warmup: int = typer.Option(DEFAULT_WARMUP, "--warmup", min=0, help="Untimed decisions."),
    passes: int = typer.Option(
        DEFAULT_PASSES, "--passes", min=1, help="Timed passes; each job keeps its fastest."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Classify + route a corpus in process: latency percentiles and cost saved vs premium."""
    jobs = build_corpus(size, seed)
    result = measure_routing(state(ctx).config(), jobs, warmup=warmup, passes=passes)
    if as_json:
        print_json(result)
        return
    table = Table(title="lanes bench route", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, f"{value:.2%}" if key == "savings" else str(value))
    console.print(table)
