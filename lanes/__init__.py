"""lanes: route LLM jobs to the right model on the right account, through Celery lanes.

What a program uses is named here (a test pins the list)::

    from lanes import Lanes, Result

    with Lanes.connect() as lanes:
        result: Result = lanes.submit({"prompt": "...", "max_tokens": 400}).get(timeout_s=120)
"""

from broker.handle import JobHandle
from broker.result import Result
from kernel.config import Config, load_config
from kernel.errors import (
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
from kernel.taxonomy import Classification, Complexity, TaskType
from lanes.batch import BatchSummary
from lanes.client import Lanes
from lanes.compare import Comparison
from lanes.pipeline import Pipeline, PipelineRun, load_pipeline
from lanes.review import ReviewReport
from lanes.reviewers import Reviewer
from router.decision import Decision, Step
from router.job import Job

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
