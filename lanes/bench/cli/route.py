"""``lanes bench route``: the command; the measurement is :mod:`lanes.bench.route`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from lanes.bench.cli.group import bench_app
from lanes.bench.corpus import DEFAULT_SEED, DEFAULT_SIZE, build_corpus
from lanes.bench.route import DEFAULT_PASSES, DEFAULT_WARMUP, measure_routing
from lanes.cli.app import console, print_json, state
from lanes.kernel.errors import JobError
from lanes.router.job import Job

REQUEST_MAX_TOKENS = 1024


def request_jobs(path: Path) -> tuple[list[Job], list[bool | None]]:
    """One job per row's ``text`` of a JSONL file, and each row's ``vital`` label (None where
    a row has none; the labels are never shown to the router)."""
    from lanes.bench.evaluation import load_jsonl

    if not path.is_file():
        raise JobError(f'{path}: no such file; give a JSONL file of {{"text": ...}} rows')
    try:
        rows = load_jsonl(path)
        jobs = [Job(prompt=str(row["text"]), max_tokens=REQUEST_MAX_TOKENS) for row in rows]
        return jobs, [None if row.get("vital") is None else bool(row["vital"]) for row in rows]
    except ValueError as exc:
        raise JobError(str(exc)) from None
    except KeyError:
        raise JobError(f"{path}: every row needs a 'text'") from None


@bench_app.command("route")
def route_bench(
    ctx: typer.Context,
    size: int = typer.Option(DEFAULT_SIZE, "--size", min=1, help="Jobs in the corpus."),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Corpus seed."),
    warmup: int = typer.Option(DEFAULT_WARMUP, "--warmup", min=0, help="Untimed decisions."),
    passes: int = typer.Option(
        DEFAULT_PASSES, "--passes", min=1, help="Timed passes; each job keeps its fastest."
    ),
    requests: Path | None = typer.Option(
        None,
        "--requests",
        help='Route these requests instead (JSONL rows {"text": ...}, max_tokens 1024 each).',
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Classify + route a corpus in process: latency percentiles and cost saved vs premium."""
    jobs, labels = (build_corpus(size, seed), None) if requests is None else request_jobs(requests)
    config = state(ctx).config()
    result = measure_routing(config, jobs, warmup=warmup, passes=passes, labels=labels)
    if as_json:
        print_json(result)
        return
    table = Table(title="lanes bench route", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, f"{value:.2%}" if key == "savings" else str(value))
    console.print(table)
