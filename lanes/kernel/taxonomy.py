"""The words lanes decides with: task types, complexity, pattern, strategy names.

Part of the kernel: the config validates against these names and the router uses them,
so they are defined once, here."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class TaskType(StrEnum):
    ARCHITECTURE = "architecture"
    PLANNING = "planning"
    CODE_GENERATION = "code-generation"
    CODE_REVIEW = "code-review"
    DEBUGGING = "debugging"
    REFACTORING = "refactoring"
    TESTING = "testing"
    DOCUMENTATION = "documentation"
    ANALYSIS = "analysis"
    CREATIVE = "creative"
    FACTUAL = "factual"
    COORDINATION = "coordination"
    SIMPLE_TASK = "simple-task"


class Complexity(StrEnum):
    SIMPLE = "simple"
    MEDIUM = "medium"
    COMPLEX = "complex"
    CRITICAL = "critical"


class Pattern(StrEnum):
    SINGLE_SHOT = "single-shot"
    MULTI_STEP = "multi-step"
    ITERATIVE = "iterative"


class StrategyName(StrEnum):
    """The routing strategies (``routing.strategy``, a job's ``strategy`` pin)."""

    BEST_FOR_TASK = "best_for_task"
    COST_OPTIMIZED = "cost_optimized"
    PERFORMANCE_OPTIMIZED = "performance_optimized"
    CRITICALITY = "criticality"
    ROUND_ROBIN = "round_robin"
    FALLBACK_CHAIN = "fallback_chain"
    MANUAL = "manual"
    CUSTOM_RULES = "custom_rules"
    HOOK = "hook"


STRATEGY_NAMES: tuple[str, ...] = tuple(name.value for name in StrategyName)


class Priority(StrEnum):
    """Who waits for a job: a person now (``interactive``: run, review, compare, MCP, the
    Python API by default) or nobody in particular (``batch``: ``lanes batch``). On the
    same lane, interactive jobs are taken before any batch job that waits."""

    INTERACTIVE = "interactive"
    BATCH = "batch"


DEFAULT_VITAL_THRESHOLD = 0.5
"""``p_vital`` from which a request counts as vital when no cue names it. The model's
probability is fitted with vital and other text weighted equally, a far larger share than
vital work has in the text it learns from: the even-odds point leans to recall."""


class Classification(BaseModel):
    """What the classifier concludes about one job. Immutable."""

    model_config = ConfigDict(frozen=True)

    type: TaskType
    complexity: Complexity
    pattern: Pattern = Pattern.SINGLE_SHOT
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    needs_extended_thinking: bool = False
    involves_code: bool = False
    priority: int = Field(default=3, ge=1, le=5)
    vital: bool = False
    """Vital work (costly if wrong: security, architecture, performance-critical work,
    production incidents, money, data loss, migrations, anything critical) never touches a
    lane tagged ``cheap``: not first, not in its fallback chain, not while waiting."""
    vital_reason: str | None = None
    """Why the job is vital ("security: 'authentication'", "near payments, p_vital
    0.83 >= 0.5", "the job says vital: true"), or None when it is not."""
    p_vital: float = Field(default=0.0, ge=0.0, le=1.0)
    """The learned chance that the request is costly if done wrong (``lanes.router.vital``)."""
    vital_threshold: float = Field(default=DEFAULT_VITAL_THRESHOLD, ge=0.0, le=1.0)
    """The ``p_vital`` from which the request counts as vital (``routing.vital_threshold``)."""
    vital_learned: bool = False
    """Vital on ``p_vital`` alone: no cue named it and the job did not say. A job pinned to
    a cheap lane then keeps its pin, with a warning (a cue or ``vital: true`` refuses it)."""
    difficulty: float = Field(default=0.5, ge=0.0, le=1.0)
    """Estimated chance that a cheap model fails where a premium one succeeds; the
    complexity levels are thresholds on it (see ``lanes.router.difficulty``)."""
    confidence: float = Field(default=0.5, ge=0.0, le=1.0)
