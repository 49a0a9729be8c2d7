"""Measure task-type accuracy of the classifier on labelled rows.

A row is a dict with ``text`` and ``type`` (a ``TaskType`` value, or ``orchestration``), and
optionally ``prefix`` (e.g. the Conventional Commits prefix the label came from). Predictions
are counted as labelled sets name them (``lanes.bench.judgement.TYPE_ALIASES``: planning and
coordination as orchestration, factual as analysis). Usage::

    python -m lanes.bench.evaluation path/to/rows.jsonl
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from lanes.bench.judgement import counted_type
from lanes.router.classifier import classify_text

Predictor = Callable[[str], str]
"""Maps a text to a predicted type name."""


class Score(TypedDict):
    n: int
    correct: int
    accuracy: float


@dataclass(frozen=True)
class Miss:
    text: str
    expected: str
    predicted: str


@dataclass(frozen=True)
class EvalReport:
    """Accuracy overall, per true type, per prefix and per source (when rows carry them);
    ``confusion[true][predicted]``."""

    total: int
    correct: int
    accuracy: float
    per_type: dict[str, Score]
    confusion: dict[str, dict[str, int]]
    per_prefix: dict[str, Score] = field(default_factory=dict)
    per_source: dict[str, Score] = field(default_factory=dict)
    misses: list[Miss] = field(default_factory=list)


def _predict_type(text: str) -> str:
    return counted_type(classify_text(text).type.value)


def _tally(bucket: dict[str, list[int]], key: str, hit: bool) -> None:
    counts = bucket.setdefault(key, [0, 0])
    counts[0] += 1
    counts[1] += hit


def _scores(bucket: dict[str, list[int]]) -> dict[str, Score]:
    return {
        k: Score(n=n, correct=c, accuracy=c / n if n else 0.0)
        for k, (n, c) in sorted(bucket.items())
    }


def evaluate(rows: Iterable[dict[str, Any]], predict: Predictor | None = None) -> EvalReport:
    """Classify each row's ``text`` and compare with its ``type``.

    ``predict`` defaults to the offline classifier. Rows without ``text`` or ``type``
    raise ``KeyError``. An empty input gives accuracy 0.0.
    """
    predictor = predict or _predict_type
    by_type: dict[str, list[int]] = {}
    by_prefix: dict[str, list[int]] = {}
    by_source: dict[str, list[int]] = {}
    confusion: dict[str, dict[str, int]] = {}
    misses: list[Miss] = []
    for row in rows:
        expected, predicted = str(row["type"]), predictor(str(row["text"]))
        hit = expected == predicted
        _tally(by_type, expected, hit)
        if "prefix" in row:
            _tally(by_prefix, str(row["prefix"]), hit)
        if "source" in row:
            _tally(by_source, str(row["source"]), hit)
        cell = confusion.setdefault(expected, {})
        cell[predicted] = cell.get(predicted, 0) + 1
        if not hit:
            misses.append(Miss(str(row["text"]), expected, predicted))
    total = sum(n for n, _ in by_type.values())
    correct = sum(c for _, c in by_type.values())
    return EvalReport(
        total=total,
        correct=correct,
        accuracy=correct / total if total else 0.0,
        per_type=_scores(by_type),
        confusion={k: dict(sorted(v.items())) for k, v in sorted(confusion.items())},
        per_prefix=_scores(by_prefix),
        per_source=_scores(by_source),
        misses=misses,
    )


def load_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; blank lines are skipped. Raises ``ValueError`` naming the
    line on malformed JSON, a non-object line or bytes that are not UTF-8."""
    rows: list[dict[str, Any]] = []
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{lineno}: bad JSON: {exc.msg}") from exc
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{lineno}: expected a JSON object")
        rows.append(row)
    return rows


def _score_table(title: str, scores: dict[str, Score]) -> list[str]:
    lines = [f"{title:<18} {'n':>5} {'correct':>8} {'accuracy':>9}"]
    for key, s in scores.items():
        lines.append(f"{key:<18} {s['n']:>5} {s['correct']:>8} {s['accuracy']:>9.1%}")
    return lines


def _confusion_table(confusion: dict[str, dict[str, int]]) -> list[str]:
    predicted = sorted({p for row in confusion.values() for p in row})
    width = max([6, *(len(p) for p in predicted)]) + 1
    header = f"{'true / predicted':<18}" + "".join(f"{p:>{width}}" for p in predicted)
    lines = [header]
    for true, row in confusion.items():
        cells = "".join(f"{row.get(p, 0):>{width}}" for p in predicted)
        lines.append(f"{true:<18}{cells}")
    return lines


def format_report(report: EvalReport) -> str:
    """Plain-text report: overall accuracy, per-type and per-prefix tables, confusion matrix
    (rows are true types, columns predicted types)."""
    lines = [f"accuracy {report.correct}/{report.total} = {report.accuracy:.1%}", ""]
    lines += _score_table("type", report.per_type)
    if report.per_prefix:
        lines += ["", *_score_table("prefix", report.per_prefix)]
    if report.per_source:
        lines += ["", *_score_table("source", report.per_source)]
    lines += ["", "confusion (rows: true, columns: predicted)"]
    lines += _confusion_table(report.confusion)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m lanes.bench.evaluation ROWS.jsonl [--misses]``: print the report."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m lanes.bench.evaluation ROWS.jsonl [--misses]", file=sys.stderr)
        return 2
    report = evaluate(load_jsonl(args[0]))
    print(format_report(report))
    if "--misses" in args:
        print("\nmisses (expected -> predicted)")
        for miss in report.misses:
            print(f"  {miss.expected:>15} -> {miss.predicted:<15} {miss.text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
