from __future__ import annotations

import pytest

from lanes.kernel.taxonomy import Complexity, TaskType
from lanes.router.classifier import classify_text
from lanes.router.difficulty import COMPLEX_FROM, SIMPLE_BELOW, level, within


def difficulty(text: str) -> float:
    return classify_text(text).difficulty


def test_every_classification_carries_a_difficulty_in_range() -> None:
    for text in ("hi", "x" * 50_000, "Prove that there are infinitely many primes.", "```\n```"):
        assert 0.0 <= difficulty(text) <= 1.0


@pytest.mark.parametrize(
    ("harder", "easier"),
    [
        (
            "Prove that the sum of the reciprocals of the primes diverges, step by step.",
            "Write a short poem about autumn leaves.",
        ),
        (
            "Find the race condition in this lock-free queue and explain the memory model issue.",
            "Fix the typo in the README heading.",
        ),
        (
            "Design the architecture for a multi-tenant event bus across three regions.",
            "Translate 'good morning' into French.",
        ),
        (
            "How many integers n with 1 <= n <= 1000 make n^2 + 3n + 2 divisible by 6?",
            "What is the capital of France?",
        ),
    ],
)
def test_exact_reasoning_is_harder_than_easy_chores(harder: str, easier: str) -> None:
    assert difficulty(harder) > difficulty(easier)


def test_complexity_levels_are_thresholds_on_difficulty() -> None:
    assert level(SIMPLE_BELOW - 0.01) is Complexity.SIMPLE
    assert level(SIMPLE_BELOW) is Complexity.MEDIUM
    assert level(COMPLEX_FROM - 0.01) is Complexity.MEDIUM
    assert level(COMPLEX_FROM) is Complexity.COMPLEX
    for text in (
        "Rename x to y",
        "Design a sharded multi-region ledger with exactly-once delivery",
    ):
        clf = classify_text(text)
        assert clf.complexity is level(clf.difficulty)


def test_a_complexity_hint_moves_difficulty_into_its_band() -> None:
    assert within(0.9, Complexity.SIMPLE) < SIMPLE_BELOW
    assert SIMPLE_BELOW <= within(0.05, Complexity.MEDIUM) < COMPLEX_FROM
    assert within(0.1, Complexity.COMPLEX) >= COMPLEX_FROM
    hinted = classify_text("Write a poem", complexity=Complexity.COMPLEX)
    assert hinted.complexity is Complexity.COMPLEX and hinted.difficulty >= COMPLEX_FROM


def test_critical_is_stakes_not_difficulty() -> None:
    clf = classify_text("Production is down: the checkout returns 500s for every customer")
    assert clf.complexity is Complexity.CRITICAL
    assert clf.vital


def test_type_prior_counts() -> None:
    base = "Please help with this for the billing service today."
    arch = classify_text(base, task_type=TaskType.ARCHITECTURE).difficulty
    simple = classify_text(base, task_type=TaskType.SIMPLE_TASK).difficulty
    assert arch > simple
