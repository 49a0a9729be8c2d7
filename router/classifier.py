"""Offline task classifier: what kind of job is this, how hard, how long, how important.

Pure keyword scoring, no model calls; deterministic (same text, same answer).

How the type is chosen (see ``_classify_scan``): the first 2,000 characters, with fenced and
inline code blanked out, are split into lower-case tokens. Each token, and each two-token
phrase, found in the cue tables (``_classify_rules``) adds points to one or more task types.
The leading verb, after fillers like "could you please", counts 1.5 times; later words count
less (0.75 after the 12th token, 0.5 after the 40th), and context (system prompt, earlier
turns) counts half. Questions add points to ``factual``, or to ``debugging`` for a "why"
about code or a fault. The type with the most points wins; under ``MIN_POINTS`` the job is
``code-generation`` when the text is about code, else ``simple-task``. Ties go to the more
specific type ("Add tests" is testing).

Cost does not grow with text length past the scanned head (the token estimate is O(n) in
C): about 10 microseconds for a one-line request, 35-60 for 2 KB or more.
"""

from __future__ import annotations

from kernel.taxonomy import Classification, Complexity, Pattern, TaskType
from router import _classify_rules as rules
from router._classify_index import TYPE_INDEX, TYPES
from router._classify_scan import Scan, scan_text
from router.job import Job

MIN_POINTS = 1.0
"""Below this many points for the best type, the text carries no usable cue."""
LONG_INPUT_TOKENS = 2000
"""Inputs at least this long (estimated tokens) are at least ``complex``."""
SHORT_INPUT_TOKENS = 60
"""Factual and simple-task inputs shorter than this are ``simple``."""

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


def _decide_type(scan: Scan) -> tuple[TaskType, float]:
    """Winning type and a confidence in [0, 1]: high when the winner has many points and
    beats the runner-up clearly. Without enough points: ``code-generation`` for text about
    code, else ``simple-task``, both with confidence 0.2."""
    scores = scan.scores
    best = max(range(len(scores)), key=scores.__getitem__)
    top = scores[best]
    if top < MIN_POINTS:
        return (TaskType.CODE_GENERATION if scan.code else TaskType.SIMPLE_TASK), 0.2
    runner_up = max(s for i, s in enumerate(scores) if i != best)
    margin = (top - runner_up) / top
    strength = min(1.0, top / 5.0)
    return TYPES[best], round(0.3 + 0.65 * margin * strength, 3)


def _complexity(flags: int, task_type: TaskType, input_tokens: int) -> Complexity:
    if flags & rules.CRITICAL:
        return Complexity.CRITICAL
    if flags & rules.COMPLEX or input_tokens >= LONG_INPUT_TOKENS:
        return Complexity.COMPLEX
    if flags & rules.SIMPLE:
        return Complexity.SIMPLE
    if task_type is TaskType.ARCHITECTURE:
        return Complexity.COMPLEX
    short = input_tokens < SHORT_INPUT_TOKENS
    if short and task_type in (TaskType.FACTUAL, TaskType.SIMPLE_TASK):
        return Complexity.SIMPLE
    return Complexity.MEDIUM


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


def _vital(flags: int, complexity: Complexity) -> bool:
    """Critical work, anything touching security, or a review of architecture/performance.

    Deliberately generous: a security job wrongly sent to a cheap lane costs far more than
    an ordinary job sent to a strong one."""
    if complexity is Complexity.CRITICAL or flags & rules.SECURITY:
        return True
    return bool(flags & rules.REVIEW and flags & (rules.ARCH | rules.PERF))


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
) -> Classification:
    """Classify bare ``text``. ``task_type`` / ``complexity`` hints, when given, win over
    what the text suggests (confidence is then 1.0). ``max_tokens`` caps ``output_tokens``.

    ``context`` is text the model also reads but that is not the request itself (system
    prompt, earlier turns): it counts in ``input_tokens`` and its cues count at half weight.
    """
    scan = scan_text(text, context)
    _adjust_for_question(scan)
    inferred, confidence = _decide_type(scan)
    kind = task_type or inferred
    input_tokens = estimate_tokens(text) + (estimate_tokens(context) if context else 0)
    level = complexity or _complexity(scan.flags, kind, input_tokens)
    thinking = bool(scan.flags & rules.THINK) or (
        level in (Complexity.COMPLEX, Complexity.CRITICAL) and kind in THINKING_TYPES
    )
    return Classification(
        type=kind,
        complexity=level,
        pattern=_pattern(scan.flags, scan.enumerated),
        input_tokens=input_tokens,
        output_tokens=output_tokens_for(kind, level, max_tokens),
        needs_extended_thinking=thinking,
        involves_code=kind in CODE_TYPES or scan.code,
        priority=_priority(scan.flags, level),
        vital=_vital(scan.flags, level),
        confidence=1.0 if task_type is not None else confidence,
    )


def classify(job: Job) -> Classification:
    """Classify a job: the latest user message is the request; the system prompt and earlier
    turns are context. Hints (``task_type``, ``complexity``) win; ``max_tokens`` caps the
    output estimate. Delegates to :func:`classify_text`."""
    messages = job.as_messages()
    context = "\n".join(p for p in [job.system, *(m["content"] for m in messages[:-1])] if p)
    return classify_text(
        messages[-1]["content"],
        max_tokens=job.max_tokens,
        task_type=job.task_type,
        complexity=job.complexity,
        context=context,
    )
