"""Config: one YAML file, validated once, passed in everywhere."""

from kernel.config.loader import EXAMPLE_CONFIG, find_config, load_config
from kernel.config.models import (
    ChainStep,
    Config,
    InstanceSpec,
    Limits,
    ModelSpec,
    Price,
    ProviderKind,
    SimMode,
)

__all__ = [
    "EXAMPLE_CONFIG",
    "ChainStep",
    "Config",
    "InstanceSpec",
    "Limits",
    "ModelSpec",
    "Price",
    "ProviderKind",
    "SimMode",
    "find_config",
    "load_config",
]
