"""The words the router classifies jobs with: task types, complexity, pattern."""

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
    """Vital work (critical complexity, or security/architecture/performance review) never
    runs on a lane tagged ``cheap``."""
    confidence: float = Field(default=0.5, ge=0.0, le=1.0)
