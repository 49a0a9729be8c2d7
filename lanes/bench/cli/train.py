"""``lanes train``: rebuild the type model from local copies of its sources."""

from __future__ import annotations

import json
from pathlib import Path

import typer

import lanes.router.data as router_data
from lanes.cli.app import app, err_console, print_json
from lanes.router.typemodel import MODEL_FILE

DEFAULT_MODEL = Path(router_data.__file__).resolve().parent / MODEL_FILE
"""Where the shipped model lives (in this checkout or installation)."""


@app.command("train")
def train(
    mirrors: Path = typer.Option(
        ...,
        "--mirrors",
        help="Directory with a git copy of every source (OWNER+NAME or OWNER+NAME/repo).",
    ),
    out: Path = typer.Option(DEFAULT_MODEL, "--out", help="Where to write the model (.npz)."),
    corpus_dir: Path = typer.Option(
        Path(".lanes/corpus"), "--corpus-dir", help="Where to write corpus.jsonl + manifest.json."
    ),
    heldout: bool = typer.Option(
        True, "--heldout/--no-heldout", help="Measure accuracy with repositories held out."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Build the corpus, measure held out by repository, fit on everything, write the model."""
    from lanes.bench.training.build import (
        build_corpus,
        evaluate_folds,
        label_agreement,
        write_corpus,
    )
    from lanes.bench.training.fit import fit

    if not mirrors.is_dir():
        raise typer.BadParameter(f"{mirrors} is not a directory", param_hint="--mirrors")

    def progress(line: str) -> None:
        err_console.print(line, highlight=False)

    rows, manifest = build_corpus(mirrors, progress)
    write_corpus(corpus_dir, rows, manifest)
    report: dict[str, object] = {"rows": len(rows), "sources": len(manifest)}
    report["label_agreement"] = agreement = label_agreement(rows)
    progress(
        f"{agreement['subjects']} subjects are written alike in several repositories; "
        f"{agreement['same_type']} of their repository pairs gave them the same type"
    )
    if heldout:
        report["heldout_by_repository"] = evaluate_folds(rows, progress)
    progress(f"fitting on all {len(rows)} rows")
    model = fit(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    report |= {"model": str(out), "features": len(model.vocab), "corpus": str(corpus_dir)}
    if as_json:
        print_json(report)
        return
    typer.echo(json.dumps(report, indent=1))
