"""Difficulty: how likely a cheap model is to fail where a premium one succeeds, in [0, 1].

A logistic score over signals that carry across domains, not over any one benchmark's rows:

- what the work is (a prior per task type: creative and simple work rarely separates models,
  architecture and debugging often do);
- exact reasoning: mathematics (numbers with operators, LaTeX, "solve", "probability"),
  quantities to keep track of (both read outside fenced code), predicting what code does,
  algorithms and concurrency;
- how much is asked at once: constraints ("must", "exactly", "at least"), enumerated
  steps, several questions;
- expert domains (law, medicine, physics, cryptography);
- work that is easy for any model: rewording, translating, greetings, brainstorming lists;
- the classifier's flags (complex, simple, step-by-step thinking) and, mildly, the length.

The weights are set by hand from those principles; ``lanes bench difficulty`` measures how
well the score orders prompts on per-prompt outcome data a user provides. Complexity levels
are thresholds on the score (:func:`level`); critical stays a matter of stakes (an incident,
money), not of difficulty.
"""

from __future__ import annotations

import math
from collections import Counter

from lanes.kernel.taxonomy import Complexity, TaskType
from lanes.router._classify_scan import pair_hits

READ_TOKENS = 160
"""Prose tokens read for cues: the request and the start of what it pastes."""
SIMPLE_BELOW = 0.30
"""Difficulty under this is ``simple``."""
COMPLEX_FROM = 0.60
"""Difficulty from this up is ``complex``; in between is ``medium``."""

TYPE_PRIOR: dict[TaskType, float] = {
    TaskType.ARCHITECTURE: 0.6,
    TaskType.PLANNING: 0.1,
    TaskType.CODE_GENERATION: 0.1,
    TaskType.CODE_REVIEW: 0.2,
    TaskType.DEBUGGING: 0.4,
    TaskType.REFACTORING: 0.0,
    TaskType.TESTING: -0.2,
    TaskType.DOCUMENTATION: -0.7,
    TaskType.ANALYSIS: 0.1,
    TaskType.CREATIVE: -0.9,
    TaskType.FACTUAL: -0.6,
    TaskType.COORDINATION: -0.2,
    TaskType.SIMPLE_TASK: -1.4,
}
"""Log-odds added for each task type."""
INTERCEPT = -0.35

MATH, CODE, CONSTRAINT, EXPERT, EASY = range(1, 6)
_WORDS: dict[int, str] = {
    MATH: "solve solving equation equations integral derivative probability theorem prove "
    "proof lemma polynomial remainder modulo divisible prime primes factorial matrix "
    "eigenvalue eigenvalues combinatorics permutation permutations compute calculate "
    "simplify inequality geometry triangle radius integer integers",
    CODE: "algorithm algorithms recursion recursive concurrency concurrent deadlock "
    "distributed consensus compiler parser assert assertion",
    CONSTRAINT: "must exactly only without ensure each every strictly never always "
    "constraint constraints requirement requirements don't",
    EXPERT: "legal lawsuit statute medical diagnosis clinical dosage physics quantum "
    "chemistry chemical thermodynamics cryptography cryptographic tax regulatory "
    "regulation compliance econometrics statistics statistical bayesian regression "
    "genome genomic protein",
    EASY: "rephrase reword paraphrase translate proofread spelling joke hello hi thanks "
    "thank ideas suggest suggestions recommend recommendations tips favorite favourite "
    "synonym synonyms",
}
_PAIRS: dict[int, str] = {
    MATH: "how many|expected value",
    CODE: "output of|time complexity|race condition|dynamic programming|lock free|"
    "thread safe|memory model|undefined behavior|undefined behaviour|big o",
    CONSTRAINT: "at least|at most|no more|do not",
    EASY: "capital of|name some|list some|give me",
}
WORD_CATEGORY: dict[str, int] = {w: c for c, words in _WORDS.items() for w in words.split()}
PAIR_CATEGORY: dict[tuple[str, str], int] = {
    (a, b): c
    for c, phrases in _PAIRS.items()
    for a, b in (phrase.split() for phrase in phrases.split("|"))
}
_PAIR_HEADS = frozenset(a for a, _ in PAIR_CATEGORY)
WEIGHTS = {MATH: 0.55, CODE: 0.45, CONSTRAINT: 0.18, EXPERT: 0.35, EASY: -0.6}
"""Log-odds per hit of each kind."""
CAPS = {MATH: 4, CODE: 3, CONSTRAINT: 6, EXPERT: 2, EASY: 2}
"""Hits counted at most, per kind."""


def _counts(tokens: list[str]) -> Counter[int]:
    """Hits per kind among ``tokens``: words, and word pairs (a pair counts once)."""
    counts = Counter(filter(None, map(WORD_CATEGORY.get, tokens)))
    counts.update(kind for _, kind in pair_hits(tokens, PAIR_CATEGORY, _PAIR_HEADS))
    return counts


def estimate(
    tokens: list[str],
    head: str,
    task_type: TaskType,
    input_tokens: int,
    *,
    complex_cue: bool,
    simple_cue: bool,
    thinking: bool,
    steps: bool,
) -> float:
    """Difficulty in [0, 1] of a request whose prose ``tokens`` (lower-case, code blanked)
    and raw ``head`` (its first characters) the classifier has read."""
    tokens = tokens[:READ_TOKENS]
    z = INTERCEPT + TYPE_PRIOR[task_type]
    for kind, hits in _counts(tokens).items():
        z += WEIGHTS[kind] * min(hits, CAPS[kind])
    z += 0.55 * min(2, head.count("$") // 2 + head.count("\\frac"))
    z += 0.1 * min(8, sum(map(str.isdigit, tokens)))
    z += 0.15 * min(3, max(0, head.count("?") - 1))
    z += 1.2 * complex_cue - 1.2 * simple_cue + 0.6 * thinking + 0.3 * steps
    z += 0.35 * max(-0.5, min(3.0, math.log2(max(1, input_tokens) / 60)))
    return round(1.0 / (1.0 + math.exp(-z)), 3)


def level(difficulty: float) -> Complexity:
    """The complexity level a difficulty falls in (never ``critical``: that is stakes)."""
    if difficulty < SIMPLE_BELOW:
        return Complexity.SIMPLE
    if difficulty < COMPLEX_FROM:
        return Complexity.MEDIUM
    return Complexity.COMPLEX


def within(difficulty: float, complexity: Complexity) -> float:
    """``difficulty`` moved into the band of ``complexity`` (a caller's hint wins);
    ``critical`` is stakes, not difficulty, and leaves it as it is."""
    if complexity is Complexity.CRITICAL:
        return difficulty
    if complexity is Complexity.SIMPLE:
        return min(difficulty, round(SIMPLE_BELOW - 0.001, 3))
    if complexity is Complexity.MEDIUM:
        return min(max(difficulty, SIMPLE_BELOW), round(COMPLEX_FROM - 0.001, 3))
    return max(difficulty, COMPLEX_FROM)
