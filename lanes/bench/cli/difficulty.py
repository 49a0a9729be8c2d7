"""``lanes bench difficulty``: does the difficulty score order prompts by outcome?"""

from __future__ import annotations

from pathlib import Path

import typer

from lanes.bench.cli.group import bench_app
from lanes.cli.app import print_json
from lanes.kernel.errors import JobError


@bench_app.command("difficulty")
def difficulty_bench(
    files: list[Path] = typer.Argument(
        ..., help='JSONL files of {"prompt", "strong_ok", "weak_ok"} rows, one source each.'
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """AUC and gap recovered of difficulty vs prompt length vs random, per file and pooled."""
    from lanes.bench.difficulty import measure, parse_rows
    from lanes.bench.evaluation import load_jsonl

    report: dict[str, object] = {}
    pooled = []
    for path in files:
        if not path.is_file():
            raise JobError(f"{path}: no such file; give JSONL files of per-prompt outcomes")
        try:
            rows = parse_rows(load_jsonl(path), str(path))
        except ValueError as exc:
            raise JobError(str(exc)) from None
        pooled += rows
        report[path.stem] = measure(rows)
    if len(files) > 1:
        report["pooled"] = measure(pooled)
    if as_json:
        print_json(report)
        return
    for name, figures in report.items():
        assert isinstance(figures, dict)
        typer.echo(f"{name}: {figures['prompts']} prompts")
        for scorer in ("difficulty", "length", "random"):
            s = figures[scorer]
            typer.echo(f"  {scorer:<11} auc {s['auc']:.4f}  gap_recovered {s['gap_recovered']:.4f}")
