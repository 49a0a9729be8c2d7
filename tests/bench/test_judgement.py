"""Vital and difficulty figures of ``lanes bench classify``: their arithmetic, and the
classifier judged on rows it can be checked on."""

from __future__ import annotations

from lanes.bench.judgement import (
    Judged,
    counted_type,
    format_judgement,
    judge,
    judgement,
    pairwise_auc,
)

ROWS = [
    {"text": "a", "type": "testing", "vital": True, "difficulty": "high"},
    {"text": "b", "type": "testing", "vital": True, "difficulty": "medium"},
    {"text": "c", "type": "testing", "vital": False, "difficulty": "low"},
    {"text": "dd", "type": "testing", "vital": False, "difficulty": "low"},
]
JUDGED = {
    "a": Judged("testing", True, 0.9, p_vital=0.9),
    "b": Judged("testing", False, 0.5, p_vital=0.35),
    "c": Judged("testing", True, 0.5, p_vital=0.1, cued=True),
    "dd": Judged("testing", False, 0.1, p_vital=0.3),
}


def test_vital_recall_precision_and_the_missed() -> None:
    vital = judgement(ROWS, JUDGED.__getitem__)["vital"]
    assert {k: vital[k] for k in ("n", "vital", "flagged", "missed", "recall", "precision")} == {
        "n": 4, "vital": 2, "flagged": 2, "missed": 1, "recall": 0.5, "precision": 0.5,
    }  # fmt: skip
    assert vital["auc_p_vital"] == 1.0  # both vital rows score above both others


def test_p_vital_reliability_bands_and_other_thresholds() -> None:
    vital = judgement(ROWS, JUDGED.__getitem__)["vital"]
    bands = {b["band"]: b for b in vital["reliability"]}
    assert bands["0.2-0.4"] == {"band": "0.2-0.4", "n": 2, "vital_share": 0.5,
                                "mean_p_vital": 0.325}  # fmt: skip
    assert bands["0.8-1.0"]["n"] == 1 and bands["0.4-0.6"]["vital_share"] is None
    # at 0.3: a, b, dd by p_vital and c by its cue -> every vital row, 2 of 4 flagged right
    assert vital["by_threshold"]["0.3"] == {"recall": 1.0, "precision": 0.5}
    assert vital["by_threshold"]["0.7"] == {"recall": 0.5, "precision": 0.5}


def test_difficulty_pairs_count_ties_half_and_length_is_measured_alike() -> None:
    figures = judgement(ROWS, JUDGED.__getitem__)["difficulty"]
    # pairs at different levels: a>b, a>c, a>dd, b>c (tie), b>dd -> 4.5 of 5
    assert figures == {
        "n": 4,
        "auc_difficulty": 0.9,
        "auc_length": 0.3,
    }  # ties: a~b, a~c, b~c; dd (low) is longest


def test_pairwise_auc_orders_and_needs_two_levels() -> None:
    assert pairwise_auc([0, 1, 2], [0.1, 0.2, 0.3]) == 1.0
    assert pairwise_auc([0, 1, 2], [0.3, 0.2, 0.1]) == 0.0
    assert pairwise_auc([1, 1], [0.1, 0.2]) is None


def test_rows_without_labels_give_no_figures() -> None:
    assert judgement([{"text": "x", "type": "testing"}], JUDGED.get) == {}  # type: ignore[arg-type]


def test_planning_and_factual_count_as_the_labels_they_belong_to() -> None:
    assert counted_type("planning") == counted_type("coordination") == "orchestration"
    assert counted_type("factual") == "analysis"
    assert counted_type("debugging") == "debugging"
    assert judge("Plan the migration of our monolith into services, step by step").type == (
        "orchestration"
    )


def test_the_text_report_names_each_figure() -> None:
    lines = format_judgement(judgement(ROWS, JUDGED.__getitem__))
    assert (
        "vital: recall 0.5 precision 0.5 (2 flagged, 2 vital, 1 missed); p_vital AUC 1.0" in lines
    )
    assert any(line.split() == ["0.2-0.4", "2", "0.5", "0.325"] for line in lines)
    assert "difficulty: pairwise AUC 0.9 vs length 0.3 (4 rows)" in lines
