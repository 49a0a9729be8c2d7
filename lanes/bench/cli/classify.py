"""``lanes bench classify``: task-type accuracy of the classifier on a labelled JSONL set."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from lanes.bench.cli.group import bench_app
from lanes.cli.app import print_json
from lanes.kernel.errors import JobError


@bench_app.command("classify")
def classify_accuracy(
    file: Path = typer.Argument(..., help='JSONL rows {"text": ..., "type": ...}.'),
    as_json: bool = typer.Option(False, "--json"),
    misses: bool = typer.Option(False, "--misses", help="List every wrong prediction."),
) -> None:
    """Accuracy overall, per type (and per `prefix` / `source` if rows carry them), confusion;
    vital recall and precision, and difficulty's pairwise AUC against length's, when rows
    carry `vital` and `difficulty`."""
    from lanes.bench.evaluation import evaluate, format_report, load_jsonl
    from lanes.bench.judgement import format_judgement, judgement

    if not file.is_file():
        raise JobError(f"{file}: no such file; give a JSONL file of labelled rows")
    try:
        rows = load_jsonl(file)
        report = evaluate(rows)
        judged = judgement(rows)
    except ValueError as exc:
        raise JobError(str(exc)) from None
    except KeyError as exc:
        raise JobError(f"{file}: every row needs 'text' and 'type' (missing {exc})") from None
    if as_json:
        data = {**dataclasses.asdict(report), **judged}
        if not misses:
            data.pop("misses")
        print_json(data)
        return
    typer.echo(format_report(report))
    for line in format_judgement(judged):
        typer.echo(line)
    if misses:
        for miss in report.misses:
            typer.echo(f"{miss.expected:>15} -> {miss.predicted:<15} {miss.text}")
