"""lanes: route LLM jobs to the right model on the right account, through Celery lanes.

What a program uses is named here (a test pins the list)::

    from lanes import Lanes, Result

    with Lanes.connect() as lanes:
        result: Result = lanes.submit({"prompt": "...", "max_tokens": 400}).get(timeout_s=120)

Each name is loaded when first used: importing one part of lanes (the simulator, the config
loader) does not load the client, Celery and the provider SDKs with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {
    "JobHandle": "lanes.broker.handle",
    "Result": "lanes.broker.result",
    "Lanes": "lanes.client",
    "Config": "lanes.kernel.config",
    "load_config": "lanes.kernel.config",
    "Classification": "lanes.kernel.taxonomy",
    "Complexity": "lanes.kernel.taxonomy",
    "TaskType": "lanes.kernel.taxonomy",
    "BatchSummary": "lanes.recipes.batch",
    "Comparison": "lanes.recipes.compare",
    "Pipeline": "lanes.recipes.pipeline",
    "PipelineRun": "lanes.recipes.pipeline",
    "load_pipeline": "lanes.recipes.pipeline",
    "Reviewer": "lanes.recipes.review.reviewers",
    "ReviewReport": "lanes.recipes.review.report",
    "Decision": "lanes.router.decision",
    "Step": "lanes.router.decision",
    "Job": "lanes.router.job",
    **{
        name: "lanes.kernel.errors"
        for name in (
            "AuthFailed", "BudgetExceeded", "ConfigError", "InfrastructureError", "JobError",
            "JobFailed", "JobTimeout", "LanesError", "NoRoute", "NoWorker", "Overloaded",
            "ProviderError", "ProviderTimeout", "RateLimited",
        )
    },
}  # fmt: skip

__all__ = [
    "AuthFailed",
    "BatchSummary",
    "BudgetExceeded",
    "Classification",
    "Comparison",
    "Complexity",
    "Config",
    "ConfigError",
    "Decision",
    "InfrastructureError",
    "Job",
    "JobError",
    "JobFailed",
    "JobHandle",
    "JobTimeout",
    "Lanes",
    "LanesError",
    "NoRoute",
    "NoWorker",
    "Overloaded",
    "Pipeline",
    "PipelineRun",
    "ProviderError",
    "ProviderTimeout",
    "RateLimited",
    "Result",
    "ReviewReport",
    "Reviewer",
    "Step",
    "TaskType",
    "load_config",
    "load_pipeline",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'lanes' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from lanes.broker.handle import JobHandle
    from lanes.broker.result import Result
    from lanes.client import Lanes
    from lanes.kernel.config import Config, load_config
    from lanes.kernel.errors import (
        AuthFailed,
        BudgetExceeded,
        ConfigError,
        InfrastructureError,
        JobError,
        JobFailed,
        JobTimeout,
        LanesError,
        NoRoute,
        NoWorker,
        Overloaded,
        ProviderError,
        ProviderTimeout,
        RateLimited,
    )
    from lanes.kernel.taxonomy import Classification, Complexity, TaskType
    from lanes.recipes.batch import BatchSummary
    from lanes.recipes.compare import Comparison
    from lanes.recipes.pipeline import Pipeline, PipelineRun, load_pipeline
    from lanes.recipes.review.report import ReviewReport
    from lanes.recipes.review.reviewers import Reviewer
    from lanes.router.decision import Decision, Step
    from lanes.router.job import Job
