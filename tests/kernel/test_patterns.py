"""User regexes run on RE2: linear-time matching, and patterns RE2 cannot take are refused."""

from __future__ import annotations

import pytest

from lanes.kernel.patterns import compile_safe


def test_patterns_catastrophic_backtracking_pattern_matches_in_linear_time() -> None:
    # Python's re never finishes this one (each extra "a" doubles its work).
    assert compile_safe(r"(a+)+$").search("a" * 50_000 + "!") is None
    assert compile_safe(r"(a+)+$").search("a" * 40) is not None


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [(r"(a)\1", "invalid escape sequence"), (r"foo(?=bar)", "invalid perl operator"), ("(", "")],
)
def test_patterns_refuse_what_re2_cannot_take(pattern: str, reason: str) -> None:
    with pytest.raises(ValueError, match="RE2 syntax") as info:
        compile_safe(pattern)
    assert reason in str(info.value) and repr(pattern) in str(info.value)


def test_patterns_keep_case_flags_and_word_boundaries() -> None:
    assert compile_safe(r"(?i)\bsecurity\b").search("Check the SECURITY of it") is not None
    assert compile_safe(r"(?i)\bsecurity\b").search("insecurity") is None
