"""lanes: route LLM jobs to the right model on the right account, through Celery lanes."""

from kernel.config import Config, load_config
from kernel.errors import (
    BudgetExceeded,
    ConfigError,
    InfrastructureError,
    JobError,
    JobFailed,
    JobTimeout,
    LanesError,
    NoRoute,
    ProviderError,
)
from lanes.client import Lanes

__all__ = [
    "BudgetExceeded",
    "Config",
    "ConfigError",
    "InfrastructureError",
    "JobError",
    "JobFailed",
    "JobTimeout",
    "Lanes",
    "LanesError",
    "NoRoute",
    "ProviderError",
    "load_config",
]
