"""A deterministic corpus of varied jobs for the routing benchmark.

Built from templates: every task type, four complexities, prompts from one line to tens of
thousands of tokens, some carrying code. Half the jobs give ``task_type`` / ``complexity``
hints (as callers who know do), half leave it all to the classifier. Same size and seed,
same jobs.
"""

from __future__ import annotations

import random

from lanes.kernel.taxonomy import Complexity, TaskType
from lanes.router.classifier import CODE_TYPES
from lanes.router.job import Job

DEFAULT_SIZE = 1200
DEFAULT_SEED = 7

TEMPLATES: dict[TaskType, tuple[str, ...]] = {
    TaskType.ARCHITECTURE: (
        "Design the architecture for {subject}, with the services and their boundaries.",
        "Propose a system design for {subject} that scales to ten regions.",
    ),
    TaskType.PLANNING: (
        "Plan the migration of {subject} in phases, with milestones and risks.",
        "Write a roadmap for {subject} over the next two quarters.",
    ),
    TaskType.CODE_GENERATION: (
        "Write a Python function that implements {subject}.",
        "Implement {subject} in TypeScript with types for every input.",
    ),
    TaskType.CODE_REVIEW: (
        "Review this diff of {subject} and point out bugs and risky changes.",
        "Do a code review of {subject}; comment on naming and error handling.",
    ),
    TaskType.DEBUGGING: (
        "Fix this bug in {subject}: it raises TypeError on empty input.",
        "Why does {subject} crash with a KeyError after the retry? Find the root cause.",
    ),
    TaskType.REFACTORING: (
        "Refactor {subject} to remove the duplication and split the long function.",
        "Clean up {subject}: extract the parsing into its own module.",
    ),
    TaskType.TESTING: (
        "Write unit tests for {subject}, covering the edge cases.",
        "Add pytest tests for {subject} including failure paths.",
    ),
    TaskType.DOCUMENTATION: (
        "Document the public API of {subject} with examples.",
        "Write a README section explaining how to configure {subject}.",
    ),
    TaskType.ANALYSIS: (
        "Analyse these metrics from {subject} and explain the latency spike.",
        "Compare the trade-offs of the two designs for {subject}.",
    ),
    TaskType.CREATIVE: (
        "Write a short story about a team building {subject}.",
        "Write a poem about {subject}.",
    ),
    TaskType.FACTUAL: (
        "What is the default port of {subject}?",
        "Who maintains {subject} and when was it first released?",
    ),
    TaskType.COORDINATION: (
        "Coordinate the three workers on {subject}: split the work and merge the results.",
        "Assign the subtasks of {subject} to the team and track their progress.",
    ),
    TaskType.SIMPLE_TASK: (
        "Convert this list about {subject} to JSON.",
        "Rename the variables in this snippet about {subject} to snake_case.",
    ),
}
SUBJECTS = (
    "the payments service",
    "a rate limiter",
    "the billing pipeline",
    "an ISO date parser",
    "the search index",
    "a Redis-backed job queue",
    "the login flow",
    "a CSV importer",
)
LEADS: dict[Complexity, str] = {
    Complexity.SIMPLE: "Quick one: ",
    Complexity.MEDIUM: "",
    Complexity.COMPLEX: "This is a complex, multi-step problem across several services. ",
    Complexity.CRITICAL: "Critical: production is down and customers are affected. ",
}
CODE = """
```python
def handle(event: dict) -> dict:
    user = event["user"]
    total = sum(item["price"] * item["qty"] for item in event["items"])
    if total > user.get("limit", 0):
        raise ValueError("over limit")
    return {"user": user["id"], "total": total}
```
"""
PROSE = (
    "The service receives events from the gateway, validates them, enriches them with the "
    "customer record and writes them to the ledger; failures are retried with backoff. "
)
CONTEXT_SIZES_CHARS = ((0.70, 0), (0.20, 8_000), (0.08, 32_000), (0.02, 200_000))
"""(share of jobs, characters of extra context): short, ~2k, ~8k and ~50k tokens."""
MAX_TOKENS_CHOICES = (256, 1024, 2048, 4096)


def build_corpus(size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED) -> list[Job]:
    """``size`` jobs cycling through every task type and complexity, deterministic in seed."""
    rng = random.Random(seed)
    types = list(TaskType)
    levels = list(Complexity)
    jobs = []
    for i in range(size):
        level = levels[(i // len(types)) % len(levels)]
        jobs.append(_job(i, types[i % len(types)], level, rng))
    return jobs


def _job(i: int, task_type: TaskType, level: Complexity, rng: random.Random) -> Job:
    template = rng.choice(TEMPLATES[task_type])
    prompt = LEADS[level] + template.format(subject=rng.choice(SUBJECTS))
    if task_type in CODE_TYPES and rng.random() < 0.6:
        prompt += "\n" + CODE
    extra_chars = _context_chars(rng)
    if extra_chars:
        prompt += "\n\nContext:\n" + (PROSE * (extra_chars // len(PROSE) + 1))[:extra_chars]
    hinted = i % 2 == 0
    return Job(
        id=f"bench-{i}",
        prompt=prompt,
        max_tokens=rng.choice(MAX_TOKENS_CHOICES),
        task_type=task_type if hinted else None,
        complexity=level if hinted else None,
    )


def _context_chars(rng: random.Random) -> int:
    draw = rng.random()
    for share, chars in CONTEXT_SIZES_CHARS:
        if draw < share:
            return chars
        draw -= share
    return 0
