"""Compiles the cue tables of ``_classify_rules`` into flat lookup dicts, once, at import.

The classifier then does one dict lookup per token: ``WORDS[token]`` gives the token's
per-type points and flag bits; ``PAIRS[(token, next_token)]`` the same for a two-token
phrase.
"""

from __future__ import annotations

from typing import NamedTuple

from lanes.kernel.taxonomy import TaskType
from lanes.router import _classify_rules as rules

TYPES: tuple[TaskType, ...] = tuple(TaskType)
"""Task types in a fixed order; score vectors are indexed by position in this tuple."""

TYPE_INDEX: dict[TaskType, int] = {t: i for i, t in enumerate(TYPES)}


class Cue(NamedTuple):
    """What one token (or bigram) contributes: ``(type index, points)`` pairs and flag bits."""

    scores: tuple[tuple[int, float], ...]
    flags: int


def inflections(word: str) -> set[str]:
    """``word`` plus its common English inflections (-s, -es, -ed, -ing, -ies, doubling).

    Over-generation (``docsed``) is harmless: such tokens never occur. A leading ``=``
    returns the bare word alone.
    """
    if word.startswith("="):
        return {word[1:], word[1:].replace("'", "\u2019")}
    forms = {word, word + "s", word + "es", word + "ed", word + "ing"}
    if word.endswith("e"):
        forms |= {word + "d", word[:-1] + "ing"}
    if word.endswith("y") and len(word) > 2:
        forms |= {word[:-1] + "ies", word[:-1] + "ied"}
    vowels = "aeiou"
    tail = word[-3:]
    if len(tail) == 3 and tail[0] not in vowels and tail[1] in vowels and tail[2] not in "aeiouwxy":
        forms |= {word + word[-1] + "ed", word + word[-1] + "ing"}
    return forms | {f.replace("'", "\u2019") for f in forms if "'" in f}


def _add(
    acc: dict[str, tuple[dict[int, float], list[int]]], key: str, type_i: int, pts: float, flag: int
) -> None:
    scores, flags = acc.setdefault(key, ({}, [0]))
    if type_i >= 0:
        scores[type_i] = max(scores.get(type_i, 0.0), pts)
    flags[0] |= flag


def _freeze(acc: dict[str, tuple[dict[int, float], list[int]]]) -> dict[str, Cue]:
    return {k: Cue(tuple(sorted(s.items())), f[0]) for k, (s, f) in acc.items()}


def _build_words() -> dict[str, Cue]:
    acc: dict[str, tuple[dict[int, float], list[int]]] = {}
    for task_type, by_weight in rules.WORD_CUES.items():
        for pts, words in by_weight.items():
            for word in words.split():
                for form in inflections(word):
                    _add(acc, form, TYPE_INDEX[task_type], pts, 0)
    for flag, words in rules.FLAG_WORDS.items():
        for word in words.split():
            for form in inflections(word):
                _add(acc, form, -1, 0.0, flag)
    return _freeze(acc)


def _phrase_forms(phrase: str) -> list[str]:
    """All spellings of a two-word phrase: ``word*`` is inflected, other words are exact."""
    first, second = (
        inflections(w[:-1]) if w.endswith("*") else inflections("=" + w) for w in phrase.split()
    )
    return [f"{a} {b}" for a in first for b in second]


def _build_bigrams() -> dict[tuple[str, str], Cue]:
    acc: dict[str, tuple[dict[int, float], list[int]]] = {}
    for task_type, by_weight in rules.BIGRAM_CUES.items():
        for pts, phrases in by_weight.items():
            for phrase in phrases.split("|"):
                for form in _phrase_forms(phrase):
                    _add(acc, form, TYPE_INDEX[task_type], pts, 0)
    for flag, phrases in rules.FLAG_BIGRAMS.items():
        for phrase in phrases.split("|"):
            for form in _phrase_forms(phrase):
                _add(acc, form, -1, 0.0, flag)
    for phrase in rules.NEUTRAL_BIGRAMS.split("|"):
        for form in _phrase_forms(phrase):
            acc.setdefault(form, ({}, [0]))
    pairs: dict[tuple[str, str], Cue] = {}
    for key, cue in _freeze(acc).items():
        first, second = key.split()
        pairs[first, second] = cue
    return pairs


WORDS: dict[str, Cue] = _build_words()
PAIRS: dict[tuple[str, str], Cue] = _build_bigrams()
