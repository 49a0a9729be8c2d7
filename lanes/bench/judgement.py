"""How well the classifier judges requests beyond their type: vital or not, and how hard.

Rows may carry ``vital`` (true/false) and ``difficulty`` (``low``, ``medium``, ``high``)
besides ``text`` and ``type`` (``requests-dev.jsonl`` does). For vital: recall and precision
of the classifier's decision, and how many vital rows it would let reach a cheap lane;
``p_vital``'s AUC, its reliability (per band of ``p_vital``: rows, the share truly vital,
the mean ``p_vital``), and recall and precision at other thresholds. For
difficulty: pairwise AUC, the share of pairs of rows at
different levels that the score puts in the right order (ties count half), for the
classifier's ``difficulty`` and for the prompt's length in characters.

Type names the classifier has and labelled sets lack are counted as the label they belong
to (:data:`TYPE_ALIASES`): planning and coordination are orchestration, factual is analysis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from lanes.kernel.taxonomy import DEFAULT_VITAL_THRESHOLD
from lanes.router.classifier import classify_text

TYPE_ALIASES = {"planning": "orchestration", "coordination": "orchestration", "factual": "analysis"}
LEVELS = {"low": 0, "medium": 1, "high": 2}
BANDS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
"""Edges of the ``p_vital`` bands of the reliability table."""
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)


@dataclass(frozen=True)
class Judged:
    """What the classifier made of one row's text."""

    type: str
    vital: bool
    difficulty: float
    p_vital: float = 0.0
    cued: bool = False
    """Whether a cue of the tables makes it vital, whatever ``p_vital`` says."""


def counted_type(name: str) -> str:
    """A predicted type name as labelled sets count it (:data:`TYPE_ALIASES`)."""
    return TYPE_ALIASES.get(name, name)


def judge(text: str, threshold: float = DEFAULT_VITAL_THRESHOLD) -> Judged:
    clf = classify_text(text, vital_threshold=threshold)
    kind = counted_type(clf.type.value)
    cued = clf.vital and not clf.vital_learned
    return Judged(kind, clf.vital, clf.difficulty, clf.p_vital, cued)


def vital_figures(labels: Sequence[bool], judged: Sequence[Judged]) -> dict[str, Any]:
    """Recall and precision of the vital decision against ``labels``; ``missed`` vital rows
    are those the cheap lanes stay open to."""
    marks = [j.vital for j in judged]
    flagged = sum(marks)
    hits = sum(m and v for m, v in zip(marks, labels, strict=True))
    positives = sum(labels)
    return {
        "n": len(labels),
        "vital": positives,
        "flagged": flagged,
        "missed": positives - hits,
        **_recall_precision(labels, marks),
        "auc_p_vital": pairwise_auc([int(v) for v in labels], [j.p_vital for j in judged]),
        "reliability": reliability(labels, [j.p_vital for j in judged]),
        "by_threshold": {
            str(t): _recall_precision(labels, [j.cued or j.p_vital >= t for j in judged])
            for t in THRESHOLDS
        },
    }


def reliability(labels: Sequence[bool], probs: Sequence[float]) -> list[dict[str, Any]]:
    """Per band of ``p_vital`` (:data:`BANDS`): rows, the share truly vital, the mean
    ``p_vital``. Calibrated: the two shares agree."""
    out: list[dict[str, Any]] = []
    for low, high in pairwise(BANDS):
        inside = [(v, p) for v, p in zip(labels, probs, strict=True)
                  if low <= p < high or (high == BANDS[-1] and p == high)]  # fmt: skip
        n = len(inside)
        out.append(
            {
                "band": f"{low:.1f}-{high:.1f}",
                "n": n,
                "vital_share": round(sum(v for v, _ in inside) / n, 4) if n else None,
                "mean_p_vital": round(sum(p for _, p in inside) / n, 4) if n else None,
            }
        )
    return out


def _recall_precision(labels: Sequence[bool], marks: Sequence[bool]) -> dict[str, Any]:
    """Recall and precision of ``marks`` (flagged vital) against ``labels``."""
    flagged = sum(marks)
    hits = sum(m and v for m, v in zip(marks, labels, strict=True))
    positives = sum(labels)
    return {
        "recall": round(hits / positives, 4) if positives else None,
        "precision": round(hits / flagged, 4) if flagged else None,
    }


def pairwise_auc(levels: Sequence[int], scores: Sequence[float]) -> float | None:
    """Share of pairs at different levels whose scores are in the same order (ties half)."""
    right = pairs = 0.0
    for i, (level_i, score_i) in enumerate(zip(levels, scores, strict=True)):
        for level_j, score_j in zip(levels[i + 1 :], scores[i + 1 :], strict=True):
            if level_i == level_j:
                continue
            pairs += 1
            lower, higher = (score_i, score_j) if level_i < level_j else (score_j, score_i)
            right += 1.0 if lower < higher else 0.5 if lower == higher else 0.0
    return round(right / pairs, 4) if pairs else None


def difficulty_figures(rows: Sequence[dict[str, Any]], judged: Sequence[Judged]) -> dict[str, Any]:
    """Pairwise AUC of the classifier's difficulty and of length, on rows with a level."""
    keep = [(LEVELS[str(r["difficulty"])], r, j) for r, j in zip(rows, judged, strict=True)
            if str(r.get("difficulty")) in LEVELS]  # fmt: skip
    levels = [level for level, _, _ in keep]
    return {
        "n": len(keep),
        "auc_difficulty": pairwise_auc(levels, [j.difficulty for _, _, j in keep]),
        "auc_length": pairwise_auc(levels, [float(len(str(r["text"]))) for _, r, _ in keep]),
    }


def judgement(
    rows: Sequence[dict[str, Any]], judge_text: Callable[[str], Judged] = judge
) -> dict[str, Any]:
    """The vital and difficulty figures of the rows that carry those labels."""
    judged = [judge_text(str(row["text"])) for row in rows]
    out: dict[str, Any] = {}
    with_vital = [(bool(r["vital"]), j) for r, j in zip(rows, judged, strict=True) if "vital" in r]
    if with_vital:
        labels, marks = zip(*with_vital, strict=True)
        out["vital"] = vital_figures(labels, marks)
    if any("difficulty" in r for r in rows):
        out["difficulty"] = difficulty_figures(rows, judged)
    return out


def format_judgement(figures: dict[str, Any]) -> list[str]:
    """The figures of :func:`judgement` as text lines."""
    lines: list[str] = []
    vital = figures.get("vital")
    if vital is not None:
        lines += [
            "",
            f"vital: recall {vital['recall']} precision {vital['precision']} "
            f"({vital['flagged']} flagged, {vital['vital']} vital, {vital['missed']} missed); "
            f"p_vital AUC {vital['auc_p_vital']}",
            "p_vital band   rows  vital share  mean p_vital",
        ]
        lines += [
            f"{b['band']:<13}{b['n']:>5}  {b['vital_share']!s:>11}  {b['mean_p_vital']!s:>12}"
            for b in vital["reliability"]
        ]
    difficulty = figures.get("difficulty")
    if difficulty is not None:
        lines.append(
            f"difficulty: pairwise AUC {difficulty['auc_difficulty']} vs length "
            f"{difficulty['auc_length']} ({difficulty['n']} rows)"
        )
    return lines
