"""Build the corpus from local copies of the sources, fit the model, measure it held out.

One call (``lanes train --mirrors DIR``) does it all, given a directory holding a git copy of
each source (``git clone --bare https://github.com/OWNER/NAME DIR/OWNER+NAME``):

1. read every source's commit subjects (and the general instructions), keeping the rows
   :mod:`lanes.bench.training.commits` accepts; write them to ``corpus.jsonl`` with a
   ``manifest.json`` (repository, commit, licence, counts per label);
2. held out by repository: for each of the folds of :func:`lanes.bench.training.sources.folds`,
   fit on the other folds and score a balanced sample of the fold (at most 30 rows per
   repository and label, the way the dev set was drawn);
3. fit on everything and write the model.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from itertools import combinations
from pathlib import Path
from typing import Any

from lanes.bench.training import instructions
from lanes.bench.training.advisories import READERS
from lanes.bench.training.commits import Row, git_dir, head_commit, rows_from_subjects, subjects
from lanes.bench.training.fit import capped, fit, model_class
from lanes.bench.training.sources import EXCLUDED, SOURCES, folds
from lanes.kernel.errors import LanesError
from lanes.router.typemodel import TypeModel

Progress = Callable[[str], None]
HELDOUT_PER_LABEL = 30
MAX_NAMED = 8
"""Missing sources named in the error; the rest are counted."""


class MissingSource(LanesError):
    """A source repository has no copy under the mirrors directory (bad input: exit 2)."""

    exit_code = 2


def build_corpus(
    mirrors: Path,
    progress: Progress,
    sources: Mapping[str, str] = SOURCES,
) -> tuple[list[Row], list[dict[str, Any]]]:
    """Every row and the manifest (one entry per source; ``sources`` maps repository to
    licence). MissingSource names every repository that has no copy under ``mirrors``,
    with how to get one."""
    wanted = [*sources, instructions.REPOSITORY, *READERS]
    gitdirs = {repo: git_dir(mirrors, repo) for repo in wanted if repo not in EXCLUDED}
    missing = [repo for repo in wanted if gitdirs.get(repo) is None]
    if missing:
        shown = ", ".join(missing[:MAX_NAMED])
        more = f" and {len(missing) - MAX_NAMED} more" if len(missing) > MAX_NAMED else ""
        raise MissingSource(
            f"{len(missing)} of {len(wanted)} sources missing under {mirrors}: {shown}{more} "
            "(every source is in bench/training/sources.py); clone each with: git clone "
            f"--bare https://github.com/OWNER/NAME {mirrors}/OWNER+NAME"
        )
    rows: list[Row] = []
    manifest: list[dict[str, Any]] = []
    for i, (repo, licence) in enumerate(sources.items(), 1):
        gitdir = gitdirs[repo]
        if gitdir is None:  # an excluded repository listed as a source: never read it
            continue
        found = list(rows_from_subjects(subjects(gitdir), repo))
        progress(f"[{i}/{len(sources)}] {repo}: {len(found)} rows")
        rows += found
        manifest.append(_entry(repo, licence, head_commit(gitdir), found))
    gitdir = gitdirs[instructions.REPOSITORY]
    general = instructions.instruction_rows(gitdir) if gitdir is not None else []
    rows += general
    if gitdir is not None:
        commit = head_commit(gitdir)
        manifest.append(_entry(instructions.REPOSITORY, instructions.LICENCE, commit, general))
    return rows, manifest


def _entry(repo: str, licence: str, commit: str, rows: Sequence[Row]) -> dict[str, Any]:
    return {
        "repository": repo,
        "commit": commit,
        "licence": licence,
        "rows": len(rows),
        "labels": dict(sorted(Counter(model_class(r) for r in rows).items())),
    }


def heldout_sample(rows: Sequence[Row]) -> list[Row]:
    """At most ``HELDOUT_PER_LABEL`` rows per repository and label, sampled by
    :func:`lanes.bench.training.fit.sample_key` (as the dev set was)."""
    return capped(rows, HELDOUT_PER_LABEL, model_class)


def predict(model: TypeModel, text: str) -> str:
    """The model's own answer: a task type, or ``other``."""
    probs, other = model.type_probabilities(text)
    best = max(probs, key=probs.__getitem__)
    return instructions.OTHER if other > probs[best] else best.value


def _label(row: Row) -> str:
    return instructions.OTHER if row.prefix == instructions.OTHER else row.type.value


def evaluate_folds(
    rows: Sequence[Row], progress: Progress, groups: Sequence[Sequence[str]] | None = None
) -> dict[str, Any]:
    """Accuracy held out by repository (``groups``, default :func:`folds` of the rows'
    commit sources): per fold, per repository, overall. General instructions are always
    trained on, never scored."""
    commit_rows = [r for r in rows if r.prefix != instructions.OTHER]
    general = [r for r in rows if r.prefix == instructions.OTHER]
    if groups is None:
        groups = folds(sorted({r.source for r in commit_rows}))
    per_fold: list[dict[str, Any]] = []
    per_repo: dict[str, list[int]] = {}
    hits = total = 0
    for k, fold in enumerate(groups, 1):
        progress(f"fold {k}/{len(groups)}: fitting without {len(fold)} repositories")
        held = set(fold)
        model = fit([r for r in commit_rows if r.source not in held] + general)
        sample = heldout_sample([r for r in commit_rows if r.source in held])
        right = 0
        for row in sample:
            hit = int(predict(model, row.text) == _label(row))
            right += hit
            counts = per_repo.setdefault(row.source, [0, 0])
            counts[0] += 1
            counts[1] += hit
        accuracy = round(right / max(1, len(sample)), 4)
        per_fold.append({"repositories": list(fold), "n": len(sample), "accuracy": accuracy})
        hits += right
        total += len(sample)
    return {
        "accuracy": round(hits / total, 4) if total else 0.0,
        "n": total,
        "per_fold": per_fold,
        "per_repository": {
            repo: {"n": n, "accuracy": round(c / n, 4)} for repo, (n, c) in sorted(per_repo.items())
        },
    }


def label_agreement(rows: Sequence[Row]) -> dict[str, Any]:
    """How far the labels themselves agree: among subjects written word for word (case aside)
    in more than one repository, the share of repository pairs that gave them the same task
    type, and the share a reader who knew each subject's commonest label would get right. No
    classifier of subject text alone can beat the labels' own disagreement on such rows."""
    types: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row.prefix != instructions.OTHER:
            types[row.text.lower()].append(row.type.value)
    shared = [found for found in types.values() if len(found) > 1]
    pairs = [a == b for found in shared for a, b in combinations(found, 2)]
    labelled = sum(len(found) for found in shared)
    commonest = sum(Counter(found).most_common(1)[0][1] for found in shared)
    return {
        "subjects": len(shared),
        "pairs": len(pairs),
        "same_type": round(sum(pairs) / len(pairs), 4) if pairs else None,
        "commonest_type": round(commonest / labelled, 4) if labelled else None,
    }


def write_corpus(out_dir: Path, rows: Sequence[Row], manifest: list[dict[str, Any]]) -> None:
    """``corpus.jsonl`` (one row per line, ``type`` as the label) and ``manifest.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            data = {**asdict(row), "type": _label(row)}
            fh.write(json.dumps(data, ensure_ascii=False) + "\n")
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
