"""Offline task classifier: what kind of job is this, how hard, how long, how important.

No model calls, no downloads; deterministic (same text, same answer).

Reading (``_classify_scan``): the first 2,000 characters, with fenced and inline code blanked
out, are split into lower-case tokens. The first 120 tokens vote: each token, and each
two-token phrase, found in the cue tables (``_classify_rules``) adds points to task types
(the leading verb, after fillers like "could you please", counts 1.5 times; later words
less: 0.75 after the 12th token, 0.5 after the 40th; context such as a system prompt counts
half) and raises flags. Later tokens raise only security, incident and code flags.

The type (:func:`_decide_type`): the cue tables name the types the learned model has no
labels for; the learned model (``lanes.router.typemodel``, trained on real commit subjects)
chooses among the software-change types. Difficulty comes from ``lanes.router.difficulty``;
complexity is a threshold on it (critical: an incident or similar stakes). Vital work and
why: :func:`vital_reason`.

Cost does not grow with text length past the scanned head (the token estimate is O(n) in
C): tens of microseconds, about 100 for 2 KB or more.
"""

from __future__ import annotations

from itertools import compress

from lanes.kernel.taxonomy import (
    DEFAULT_VITAL_THRESHOLD,
    Classification,
    Complexity,
    Pattern,
    TaskType,
)
from lanes.router import _classify_rules as rules
from lanes.router._classify_index import PAIRS, TYPE_INDEX, TYPES, WORDS
from lanes.router._classify_scan import Scan, pair_hits, scan_text
from lanes.router.difficulty import estimate as estimate_difficulty
from lanes.router.difficulty import level as difficulty_level
from lanes.router.difficulty import within
from lanes.router.job import Job
from lanes.router.typemodel import CLASS_TYPES, HEAD_CHARS, shipped_model
from lanes.router.vital import shipped_vital_model

MIN_POINTS = 1.0
"""Below this many points for the best type, the text carries no usable cue."""
OTHER_MIN_POINTS = 1.5
"""Cue points a type the model does not know needs to stand against the model."""
MODEL_TYPES = frozenset(CLASS_TYPES.values())
_MODEL_TYPE_INDEXES = tuple(TYPE_INDEX[t] for t in MODEL_TYPES)
_OTHER_TYPE_INDEXES = tuple(i for i, t in enumerate(TYPES) if t not in MODEL_TYPES)
_VITAL_FLAGS = (
    (rules.SECURITY, "security"),
    (rules.DATA_LOSS, "data loss"),
    (rules.MONEY, "money"),
    (rules.MIGRATION, "migration"),
    (rules.PERF_CRITICAL, "performance-critical"),
    (rules.CRITICAL, "critical"),
)
"""Flags that make work vital on their own, most specific first, with the label its reason
starts with."""
_ANYWHERE = rules.SECURITY | rules.CRITICAL
"""Vital flags that count wherever they are read (pasted material included); the others
count only where the task is stated (``Scan.statement_flags``)."""
_VITAL_REVIEWS = (
    (rules.ARCH, "architecture"),
    (rules.PERF, "performance"),
    (rules.CORRECTNESS, "correctness"),
)
"""Flags that make a review vital."""

_DEBUG = TYPE_INDEX[TaskType.DEBUGGING]
_FACTUAL = TYPE_INDEX[TaskType.FACTUAL]

CODE_TYPES = frozenset(
    {
        TaskType.CODE_GENERATION,
        TaskType.CODE_REVIEW,
        TaskType.DEBUGGING,
        TaskType.REFACTORING,
        TaskType.TESTING,
    }
)
THINKING_TYPES = frozenset(
    {TaskType.ARCHITECTURE, TaskType.PLANNING, TaskType.DEBUGGING, TaskType.ANALYSIS}
)
_BASE_OUTPUT: dict[TaskType, int] = {
    TaskType.ARCHITECTURE: 2000,
    TaskType.PLANNING: 1500,
    TaskType.CODE_GENERATION: 2000,
    TaskType.CODE_REVIEW: 1200,
    TaskType.DEBUGGING: 1200,
    TaskType.REFACTORING: 1800,
    TaskType.TESTING: 1800,
    TaskType.DOCUMENTATION: 1800,
    TaskType.ANALYSIS: 1200,
    TaskType.CREATIVE: 800,
    TaskType.FACTUAL: 300,
    TaskType.COORDINATION: 800,
    TaskType.SIMPLE_TASK: 200,
}
"""Expected answer length in tokens for a ``medium`` job of each type."""
_COMPLEXITY_FACTOR: dict[Complexity, float] = {
    Complexity.SIMPLE: 0.4,
    Complexity.MEDIUM: 1.0,
    Complexity.COMPLEX: 2.0,
    Complexity.CRITICAL: 2.0,
}


def estimate_tokens(text: str) -> int:
    """Estimated provider tokens for ``text``: about 4 ASCII characters per token, one token
    per non-ASCII character (CJK and emoji tokenise densely). At least 1, even for ``""``.
    Providers differ by roughly +-20% on prose and more on code or unusual scripts."""
    n = len(text)
    if text.isascii():
        return max(1, (n + 3) // 4)
    ascii_n = len(text.encode("ascii", "ignore"))
    return max(1, (ascii_n + 3) // 4 + (n - ascii_n))


def _adjust_for_question(scan: Scan) -> None:
    """A question about code or a fault leans debugging when it asks "why"; a question about
    neither leans factual. Mutates ``scan.scores``."""
    if not scan.question:
        return
    about_fault = scan.code or scan.scores[_DEBUG] >= MIN_POINTS
    if about_fault:
        if scan.flags & rules.WHY:
            scan.scores[_DEBUG] += 2.5
    else:
        scan.scores[_FACTUAL] += 2.0 if scan.flags & rules.WHY else 1.5


def _rule_type(scan: Scan) -> tuple[TaskType, float, float]:
    """The cue tables' winner, its points, and its lead over the best model-known type."""
    scores = scan.scores
    best = max(range(len(scores)), key=scores.__getitem__)
    known = max(scores[i] for i in _MODEL_TYPE_INDEXES)
    return TYPES[best], scores[best], scores[best] - known


def _decide_type(scan: Scan, text: str) -> tuple[TaskType, float]:
    """Winning type and a confidence in [0, 1].

    The cue tables name the types the learned model has no labels for (architecture,
    planning, analysis, code review, factual, creative, coordination, simple tasks): when
    their winner is one of those, with ``OTHER_MIN_POINTS`` or more and ahead of every
    model-known type, it stands. Otherwise the model (:mod:`lanes.router.typemodel`) chooses among
    the software-change types, unless it finds the text is no software change at all, or
    knows none of its words (and the text shows no code): then the cue tables' best among
    the other types, if it has ``MIN_POINTS``, else ``simple-task``.
    """
    rule_type, points, lead = _rule_type(scan)
    if rule_type not in MODEL_TYPES and points >= OTHER_MIN_POINTS and lead > 0:
        runner_up = sorted(scan.scores)[-2]
        margin = (points - runner_up) / points
        return rule_type, round(0.3 + 0.65 * margin * min(1.0, points / 5.0), 3)
    probs, other, known = shipped_model().read(scan.tokens, text[:HEAD_CHARS])
    best = max(probs, key=probs.__getitem__)
    if not scan.code and (other > probs[best] or (known == 0 and points < MIN_POINTS)):
        other_type, other_points = _best_other(scan)
        kind = other_type if other_points >= MIN_POINTS else TaskType.SIMPLE_TASK
        return kind, round(min(0.6, other), 3)
    return best, round(probs[best], 3)


def _best_other(scan: Scan) -> tuple[TaskType, float]:
    """The cue tables' best type among those the model does not know, and its points."""
    i = max(_OTHER_TYPE_INDEXES, key=scan.scores.__getitem__)
    return TYPES[i], scan.scores[i]


def _complexity(flags: int, difficulty: float) -> Complexity:
    if flags & rules.CRITICAL:
        return Complexity.CRITICAL
    return difficulty_level(difficulty)


def _pattern(flags: int, enumerated: bool) -> Pattern:
    if flags & rules.ITERATIVE:
        return Pattern.ITERATIVE
    if enumerated or flags & rules.MULTISTEP:
        return Pattern.MULTI_STEP
    return Pattern.SINGLE_SHOT


def _priority(flags: int, complexity: Complexity) -> int:
    """5 urgent/outage; 4 critical or high; 1-2 when asked to wait; else 3."""
    if flags & rules.URGENT and not flags & rules.NOT_URGENT:
        return 5
    if complexity is Complexity.CRITICAL or flags & rules.HIGH:
        return 4
    if flags & rules.LOWEST:
        return 1
    if flags & rules.LOW:
        return 2
    return 3


FlagCues = tuple[frozenset[str], dict[tuple[str, str], int], frozenset[str]]
"""Words raising a flag, the word pairs raising it (to their flags) and those pairs' first
words."""


def _flag_index(bit: int) -> FlagCues:
    """Where flag ``bit`` comes from in the cue tables."""
    words = frozenset(w for w, cue in WORDS.items() if cue.flags & bit)
    pairs = {key: cue.flags for key, cue in PAIRS.items() if cue.flags & bit}
    return words, pairs, frozenset(first for first, _ in pairs)


_FLAG_INDEX: dict[int, FlagCues] = {
    bit: _flag_index(bit)
    for bit in {
        *(b for b, _ in _VITAL_FLAGS),
        *(b for b, _ in _VITAL_REVIEWS),
    }
}


def _cue(scan: Scan, bit: int) -> str:
    """The first word or word pair of the request that raised flag ``bit``, quoted. The
    scans run in C (``compress``); Python only looks at candidate positions."""
    tokens = scan.tokens
    words, pairs, heads = _FLAG_INDEX[bit]
    pair_at = next((i for i, _ in pair_hits(tokens, pairs, heads)), len(tokens))
    word_at = next(compress(range(pair_at), map(words.__contains__, tokens[:pair_at])), None)
    if word_at is not None:
        return f"'{tokens[word_at]}'"
    if pair_at < len(tokens):
        return f"'{tokens[pair_at]} {tokens[pair_at + 1]}'"
    return "in its context"


def vital_reason(scan: Scan, task_type: TaskType, complexity: Complexity) -> str | None:
    """Why the work is vital (costly if wrong), or None. Deliberately generous: vital work
    sent to a cheap lane costs far more than ordinary work sent to a strong one."""
    flags = (scan.flags & _ANYWHERE) | scan.statement_flags
    for bit, label in _VITAL_FLAGS:
        if flags & bit:
            return f"{label}: {_cue(scan, bit)}"
    if complexity is Complexity.CRITICAL:
        return "critical work"
    if task_type is TaskType.ARCHITECTURE:
        return "an architecture decision"
    if flags & rules.REVIEW or task_type is TaskType.CODE_REVIEW:
        for bit, label in _VITAL_REVIEWS:
            if flags & bit:
                return f"{label} review: {_cue(scan, bit)}"
    return None


def output_tokens_for(task_type: TaskType, complexity: Complexity, max_tokens: int | None) -> int:
    """Expected answer tokens for this type and complexity, capped by ``max_tokens``."""
    expected = int(_BASE_OUTPUT[task_type] * _COMPLEXITY_FACTOR[complexity])
    return max(1, expected if max_tokens is None else min(expected, max_tokens))


def classify_text(
    text: str,
    *,
    max_tokens: int | None = None,
    task_type: TaskType | None = None,
    complexity: Complexity | None = None,
    context: str = "",
    vital_threshold: float = DEFAULT_VITAL_THRESHOLD,
) -> Classification:
    """Classify bare ``text``. ``task_type`` / ``complexity`` hints, when given, win over
    what the text suggests (confidence is then 1.0; the difficulty moves into the hinted
    level's band). ``max_tokens`` caps ``output_tokens``.

    ``context`` is text the model also reads but that is not the request itself (system
    prompt, earlier turns): it counts in ``input_tokens`` and its cues count at half weight.

    Vital: a cue of the tables (:func:`vital_reason`) names it, or the request's ``p_vital``
    (:mod:`lanes.router.vital`) reaches ``vital_threshold``.
    """
    scan = scan_text(text, context)
    _adjust_for_question(scan)
    if task_type is None:
        kind, confidence = _decide_type(scan, text)
    else:
        kind, confidence = task_type, 1.0
    input_tokens = estimate_tokens(text) + (estimate_tokens(context) if context else 0)
    flags = scan.flags
    difficulty = estimate_difficulty(
        scan.tokens,
        scan.head,
        kind,
        input_tokens,
        complex_cue=bool(flags & rules.COMPLEX),
        simple_cue=bool(flags & rules.SIMPLE),
        thinking=bool(flags & rules.THINK),
        steps=scan.enumerated or bool(flags & rules.MULTISTEP),
    )
    if complexity is None:
        level = _complexity(flags, difficulty)
    else:
        level, difficulty = complexity, within(difficulty, complexity)
    thinking = bool(flags & rules.THINK) or (
        level in (Complexity.COMPLEX, Complexity.CRITICAL) and kind in THINKING_TYPES
    )
    judged = shipped_vital_model().judge(text)
    why = vital_reason(scan, kind, level)
    learned = why is None and judged.p_vital >= vital_threshold
    if learned:
        why = f"near {judged.category}, p_vital {judged.p_vital:.2f} >= {vital_threshold:g}"
    return Classification(
        type=kind,
        complexity=level,
        pattern=_pattern(flags, scan.enumerated),
        input_tokens=input_tokens,
        output_tokens=output_tokens_for(kind, level, max_tokens),
        needs_extended_thinking=thinking,
        involves_code=kind in CODE_TYPES or scan.code,
        priority=_priority(flags, level),
        vital=why is not None,
        vital_reason=why,
        p_vital=judged.p_vital,
        vital_threshold=vital_threshold,
        vital_learned=learned,
        difficulty=difficulty,
        confidence=confidence,
    )


def classify(job: Job, vital_threshold: float = DEFAULT_VITAL_THRESHOLD) -> Classification:
    """Classify a job: the latest user message is the request; the system prompt and earlier
    turns are context. Hints (``task_type``, ``complexity``) win; ``max_tokens`` caps the
    output estimate. Delegates to :func:`classify_text`; images, documents and tool
    definitions add their tokens to the input estimate."""
    turns = [m.text() for m in job.messages] if job.messages else [job.prompt or ""]
    context = "\n".join(p for p in [job.cache_prefix, job.system_text(), *turns[:-1]] if p)
    clf = classify_text(
        turns[-1],
        max_tokens=job.max_tokens,
        task_type=job.task_type,
        complexity=job.complexity,
        context=context,
        vital_threshold=vital_threshold,
    )
    extra = job.extra_tokens()
    if extra:
        clf = clf.model_copy(update={"input_tokens": clf.input_tokens + extra})
    if job.vital is None or (job.vital == clf.vital and not clf.vital_learned):
        return clf
    reason = "the job says vital: true" if job.vital else None
    return clf.model_copy(
        update={"vital": job.vital, "vital_reason": reason, "vital_learned": False}
    )


def rule_vital(text: str) -> bool:
    """Whether the cue tables alone find vital work in ``text`` (the labels the vital
    model's commit rows are trained on)."""
    clf = classify_text(text)
    return clf.vital and not clf.vital_learned
