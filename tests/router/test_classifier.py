"""The offline classifier: task types on hand-written requests, and every other field."""

from __future__ import annotations

import pytest

from lanes.kernel.taxonomy import Complexity, Pattern, TaskType
from lanes.router.classifier import MODEL_TYPES, classify, classify_text, estimate_tokens
from lanes.router.job import Job, Message

T = TaskType

CASES: list[tuple[str, TaskType]] = [
    ("Write unit tests for the payment service", T.TESTING),
    ("Generate Jest snapshot tests for the Button component", T.TESTING),
    ("Mock the S3 client in these tests so they run offline", T.TESTING),
    ("Increase test coverage of the parser module to 90%", T.TESTING),
    ("Review this PR for SQL injection", T.CODE_REVIEW),
    ("Please review my pull request and point out any bugs or style problems", T.CODE_REVIEW),
    ("Is this password hashing code secure?", T.CODE_REVIEW),
    ("Design the architecture for a multi-tenant event bus", T.ARCHITECTURE),
    ("Propose a system design for a URL shortener with high availability", T.ARCHITECTURE),
    ("How would you architect a real-time chat system for a million users?", T.ARCHITECTURE),
    ("Create a roadmap with milestones for migrating our monolith to Kubernetes", T.PLANNING),
    ("Break down the onboarding redesign into tasks and estimate each one", T.PLANNING),
    ("Create a step-by-step rollout plan for the new search feature", T.PLANNING),
    ("Implement a function that parses ISO 8601 dates in Python", T.CODE_GENERATION),
    ("Add a REST endpoint that returns the user's order history", T.CODE_GENERATION),
    ("Build a CLI tool in Go that tails a log file and highlights errors", T.CODE_GENERATION),
    ("Implement an LRU cache class in Java", T.CODE_GENERATION),
    ("Why does this function return None?", T.DEBUGGING),
    ("The app crashes with a NullPointerException when the list is empty", T.DEBUGGING),
    ("Getting 'ModuleNotFoundError: No module named requests' when I run it", T.DEBUGGING),
    ("Memory leak in the websocket handler, please find and fix it", T.DEBUGGING),
    ("Refactor the billing module to remove duplicated code", T.REFACTORING),
    ("Speed up the report generation query, it takes 30 seconds", T.REFACTORING),
    ("Convert this class-based component to hooks without changing behavior", T.REFACTORING),
    ("Remove dead code and unused imports from the project", T.REFACTORING),
    ("Write documentation for the public API of the SDK", T.DOCUMENTATION),
    ("Update the README with installation instructions", T.DOCUMENTATION),
    ("Add inline comments explaining the tricky parts of this algorithm", T.DOCUMENTATION),
    ("Fix the broken link in the installation docs", T.DOCUMENTATION),
    ("Summarize this article", T.ANALYSIS),
    ("Compare PostgreSQL and MongoDB for our analytics workload", T.ANALYSIS),
    ("Interpret these A/B test results", T.ANALYSIS),
    ("Write a poem about the sea", T.CREATIVE),
    ("Come up with a catchy slogan for our coffee shop", T.CREATIVE),
    ("Write a fantasy story set in a floating city", T.CREATIVE),
    ("What is the capital of France?", T.FACTUAL),
    ("Who invented the telephone?", T.FACTUAL),
    ("Define entropy in thermodynamics", T.FACTUAL),
    ("Coordinate the three agents working on the frontend, backend and database", T.COORDINATION),
    ("Delegate these subtasks to the available workers and track progress", T.COORDINATION),
    ("Assign the open bugs to team members based on their expertise", T.COORDINATION),
    ("Translate 'good morning' into Spanish", T.SIMPLE_TASK),
    ("Sort these names alphabetically: Bob, Alice, Carol", T.SIMPLE_TASK),
    ("Paraphrase this sentence", T.SIMPLE_TASK),
]


def test_hand_written_requests_mostly_typed_right() -> None:
    misses = [(t, e, classify_text(t).type) for t, e in CASES if classify_text(t).type != e]
    assert {e for _, e in CASES} == set(TaskType), "every type has cases"
    assert len(misses) <= len(CASES) * 0.15, misses


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Review this PR for SQL injection", T.CODE_REVIEW),
        ("Audit the authentication module for security vulnerabilities", T.CODE_REVIEW),
        ("Design the architecture for a multi-tenant event bus", T.ARCHITECTURE),
        ("Write unit tests for the payment service", T.TESTING),
        ("What is the capital of France?", T.FACTUAL),
        ("Write a poem about the sea", T.CREATIVE),
        ("Summarize this article", T.ANALYSIS),
    ],
)
def test_must_have_types(text: str, expected: TaskType) -> None:
    assert classify_text(text).type is expected


def test_security_review_is_vital_and_critical() -> None:
    result = classify_text("Review this PR for SQL injection")
    assert result.type is T.CODE_REVIEW
    assert result.vital
    assert result.complexity is Complexity.CRITICAL
    assert result.priority >= 4


@pytest.mark.parametrize(
    "text",
    [
        "Check the new upload endpoint for XSS and CSRF",
        "Is our JWT handling vulnerable to token replay?",
        "Look for CVE-affected crypto in our dependencies",
        "Audit the password reset flow",
    ],
)
def test_security_work_leans_vital(text: str) -> None:
    assert classify_text(text).vital


def test_architecture_and_performance_reviews_are_vital() -> None:
    assert classify_text("Review the architecture of our payment system").vital
    assert classify_text("Do a performance review of the checkout API").vital
    design = classify_text("Design the architecture for a multi-tenant event bus")
    assert design.type is T.ARCHITECTURE
    assert design.complexity is Complexity.COMPLEX
    assert design.needs_extended_thinking


def test_ordinary_work_is_not_vital() -> None:
    for text in ("Write a poem about the sea", "Fix the typo in the README", "Sort this list"):
        assert not classify_text(text).vital, text


def test_hints_win() -> None:
    result = classify_text(
        "Write a poem about the sea",
        task_type=T.CODE_REVIEW,
        complexity=Complexity.CRITICAL,
    )
    assert result.type is T.CODE_REVIEW
    assert result.complexity is Complexity.CRITICAL
    assert result.confidence == 1.0
    job = Job(prompt="Write a poem about the sea", task_type="testing", complexity="simple")
    from_job = classify(job)
    assert (from_job.type, from_job.complexity) == (T.TESTING, Complexity.SIMPLE)


def test_deterministic() -> None:
    text = "Refactor the billing module; then add tests until coverage passes 90%"
    assert len({classify_text(text) for _ in range(5)}) == 1


def test_input_tokens_grow_with_length() -> None:
    short, long = classify_text("Summarize this"), classify_text("Summarize this " + "x " * 4000)
    assert short.input_tokens >= 1
    assert long.input_tokens > short.input_tokens * 100
    assert estimate_tokens("") == 1
    assert estimate_tokens("a" * 400) == 100
    assert estimate_tokens("你好世界") == 4


def test_input_tokens_count_text_past_the_scanned_head() -> None:
    text = "Summarize this article. " + "Lorem ipsum dolor sit amet. " * 2000
    assert classify_text(text).input_tokens == pytest.approx(len(text) / 4, rel=0.01)


def test_output_tokens_capped_by_max_tokens() -> None:
    text = "Write documentation for the entire codebase"
    free = classify_text(text)
    capped = classify_text(text, max_tokens=100)
    assert free.output_tokens > 100
    assert capped.output_tokens == 100
    assert classify(Job(prompt=text, max_tokens=64)).output_tokens == 64


def test_output_tokens_follow_type_and_complexity() -> None:
    factual = classify_text("What is the capital of France?")
    docs = classify_text("Write documentation for the public API of the SDK")
    assert factual.output_tokens < docs.output_tokens
    assert classify_text("Say hello").output_tokens < 300


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("```python\nprint('hi')\n```\nWhat does this print?", True),
        ("Why does parse_date() return None?", True),
        ("Rename getUserName to fetchUserName", True),
        ("Look at src/app/main.py and explain it", True),
        ("I get a KeyError on startup", True),
        ("Write a poem about the sea", False),
        ("What is the capital of France?", False),
    ],
)
def test_code_detection(text: str, code: bool) -> None:
    assert classify_text(text).involves_code is code


def test_priority() -> None:
    down = classify_text("Production is down! The API returns 500 for every request")
    assert down.priority == 5
    assert down.complexity is Complexity.CRITICAL
    assert down.vital
    assert classify_text("Urgent: fix the checkout crash ASAP").priority == 5
    assert classify_text("Write a poem about the sea").priority == 3
    assert classify_text("Low priority: rename the helper").priority == 2
    assert classify_text("Whenever you get a chance, tidy up the logging config").priority == 1
    assert classify_text("This is not urgent, but look over the docs").priority == 2


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("First write the migration, then update the models", Pattern.MULTI_STEP),
        ("1. Parse the file\n2. Validate rows\n3. Write results", Pattern.MULTI_STEP),
        ("Keep refining the prompt until the output passes all checks", Pattern.ITERATIVE),
        ("Iterate on the design with me", Pattern.ITERATIVE),
        ("What is the capital of France?", Pattern.SINGLE_SHOT),
    ],
)
def test_pattern(text: str, pattern: Pattern) -> None:
    assert classify_text(text).pattern is pattern


@pytest.mark.parametrize(
    ("text", "complexity"),
    [
        ("Fix the typo in the README", Complexity.SIMPLE),
        ("Bump the version to 2.1", Complexity.SIMPLE),
        ("What is the capital of France?", Complexity.SIMPLE),
        ("Migrate the entire codebase from Python 2 to Python 3", Complexity.COMPLEX),
        ("Add rate limiting across services", Complexity.COMPLEX),
        ("Rotate the leaked API keys", Complexity.CRITICAL),
        ("Add a REST endpoint that returns the user's order history", Complexity.MEDIUM),
    ],
)
def test_complexity(text: str, complexity: Complexity) -> None:
    assert classify_text(text).complexity is complexity


def test_long_input_is_complex() -> None:
    assert classify_text("Summarize this: " + "word " * 3000).complexity is Complexity.COMPLEX


def test_extended_thinking() -> None:
    assert classify_text(
        "Think step by step and prove the algorithm terminates"
    ).needs_extended_thinking
    assert classify_text("Debug the race condition in the distributed lock").needs_extended_thinking
    assert not classify_text("Write a poem about the sea").needs_extended_thinking


def test_confidence_reflects_margin() -> None:
    clear = classify_text("Write unit tests and increase test coverage for the parser")
    vague = classify_text("Look at the thing")
    assert 0.0 <= vague.confidence < clear.confidence <= 1.0


def test_no_cue_falls_back() -> None:
    assert classify_text("Hmm").type is T.SIMPLE_TASK
    assert classify_text("").type is T.SIMPLE_TASK
    # Cue-less text that shows code is software work: the learned model picks its type.
    assert classify_text("Hoist the frobnicator out of parseTree()").type in MODEL_TYPES


def test_the_learned_model_reads_commit_style_requests() -> None:
    assert classify_text("Remove the unused helper from the cache module").type is (T.REFACTORING)
    assert classify_text("Handle an empty config without crashing").type is T.DEBUGGING
    assert classify_text("Add snapshot tests for the renderer").type is T.TESTING


def test_general_requests_are_not_software_work() -> None:
    for text in ("Give me a recipe for banana bread", "Say hello", "Plan a weekend in Rome"):
        assert classify_text(text).type not in MODEL_TYPES, text


def test_pasted_code_does_not_vote() -> None:
    code = "```python\n" + "def test_x():\n    assert mock.called\n" * 20 + "```"
    assert classify_text(f"Summarize what this module does\n{code}").type is T.ANALYSIS


def test_job_latest_message_is_the_request() -> None:
    job = Job(
        system="You are a helpful senior engineer.",
        messages=[
            Message(role="user", content="Write a function to merge two sorted lists"),
            Message(role="assistant", content="def merge(a, b): ..."),
            Message(role="user", content="Now add unit tests for it"),
        ],
    )
    result = classify(job)
    assert result.type is T.TESTING
    assert abs(result.input_tokens - estimate_tokens(job.text())) <= 3


def test_job_context_counts_for_flags() -> None:
    job = Job(system="Production is down for all customers.", prompt="Find the cause")
    assert classify(job).priority == 5


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Review this diff for SQL injection in the login handler", "security"),
        ("The nightly job double charges some customers' credit cards", "money"),
        ("Write the database migration that splits the orders table", "migration"),
        ("Investigate data loss after the replica failover", "data loss"),
        ("Production is down for every customer since the deploy", "critical"),
        ("Review this change for correctness: the retry is not idempotent", "correctness review"),
        ("Review the architecture of the payment service", "money"),
        ("Do a performance review of the search endpoint", "performance review"),
        ("Speed up the hot path of the request router", "performance-critical"),
        (
            "Choose between Kafka and NATS for our event-driven architecture",
            "an architecture decision",
        ),
    ],
)
def test_vital_work_says_why(text: str, label: str) -> None:
    clf = classify_text(text)
    assert clf.vital, clf
    assert clf.vital_reason is not None and clf.vital_reason.startswith(label), clf.vital_reason


@pytest.mark.parametrize(
    "text",
    [
        "Review this diff for type safety: missing annotations, None handling, casts",
        "Write a limerick about a sleepy cat",
        "Add unit tests for the date parser",
        "Fix the typo in the README",
    ],
)
def test_ordinary_work_is_not_vital_and_says_nothing(text: str) -> None:
    clf = classify_text(text)
    assert not clf.vital and clf.vital_reason is None
