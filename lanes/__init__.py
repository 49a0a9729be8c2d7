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
    Overloaded,
    ProviderError,
    ProviderTimeout,
    RateLimited,
)
from kernel.taxonomy import Classification, Complexity, TaskType
from lanes.client import Lanes
from router.decision import Decision, Step
from router.job import Job

__all__ = [
    "AuthFailed",
    "BudgetExceeded",
    "Classification",
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
    "Overloaded",
    "ProviderError",
    "ProviderTimeout",
    "RateLimited",
    "Result",
    "Step",
    "TaskType",
    "load_config",
]
