from __future__ import annotations

import pytest

from lanes.bench.training.commits import clean_subject, rows_from_subjects
from lanes.kernel.taxonomy import TaskType


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (
            "fix(runtime): avoid stack overflow on deep arrays (#1234)",
            ("fix", "Avoid stack overflow on deep arrays"),
        ),
        (
            "feat!: support generics in defineComponent",
            ("feat", "Support generics in defineComponent"),
        ),
        ("perf: cache compiled templates.", ("perf", "Cache compiled templates")),
        ("DOC: explain the broadcasting rules", ("doc", "Explain the broadcasting rules")),
        ("ENH: add a median filter to ndimage", ("enh", "Add a median filter to ndimage")),
        ("test: cover the empty input case, fixes #99", ("test", "Cover the empty input case")),
    ],
)
def test_usable_subjects_are_cleaned(subject: str, expected: tuple[str, str]) -> None:
    assert clean_subject(subject) == expected


@pytest.mark.parametrize(
    "subject",
    [
        "chore: update lockfile for the new release",  # prefix not labelled
        "fix(deps): update dependency vite to v5",  # dependency bump
        "feat: release 1.2.3 with the new api",  # version bookkeeping
        "fix: revert the broken cache change",  # revert
        "docs: thanks to everyone who helped",  # may name people
        "fix: ask @someone about this change",  # a handle
        "fix: short",  # too short
        "feat: fix: nested prefix is ambiguous here",  # another type prefix
        "Merge pull request #12 from fork/branch",  # no prefix at all
        "fix: a description that github truncated because it ran…",
        "fix: two words",  # fewer than 3 words after cleanup
    ],
)
def test_unusable_subjects_are_dropped(subject: str) -> None:
    assert clean_subject(subject) is None


def test_rows_carry_the_label_and_drop_case_insensitive_repeats() -> None:
    rows = list(
        rows_from_subjects(
            [
                "fix: handle empty strings in the parser",
                "fix: Handle empty strings in the parser",
                "perf: avoid copying the buffer twice",
                "chore: nothing to see here today",
            ],
            "owner/repo",
        )
    )
    assert [(r.type, r.prefix, r.source) for r in rows] == [
        (TaskType.DEBUGGING, "fix", "owner/repo"),
        (TaskType.REFACTORING, "perf", "owner/repo"),
    ]
