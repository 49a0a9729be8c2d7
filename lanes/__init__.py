"""lanes: route LLM jobs to the right model on the right account, through Celery lanes."""

from typing import TYPE_CHECKING, Any

from lanes.config import Config, load_config
from lanes.errors import (
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

if TYPE_CHECKING:
    from lanes.client import Lanes


def __getattr__(name: str) -> Any:
    # The client pulls in Celery and the router; import it only when asked for, so that
    # `lanes.errors` and `lanes.config` stay light and free of import cycles.
    if name == "Lanes":
        from lanes.client import Lanes

        return Lanes
    raise AttributeError(f"module 'lanes' has no attribute {name!r}")
