"""Routing strategies by name. Each is a function ``(DecisionContext) -> Choice``.

The names are those of :data:`lanes.config.models.STRATEGIES` (a test keeps them equal);
:func:`get_strategy` turns an unknown one into a :class:`JobError` listing the valid names.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from lanes.errors import JobError
from router.strategies.base import (
    Choice,
    DecisionContext,
    LocalCounter,
    RotationCounter,
    Services,
    Strategy,
)
from router.strategies.chain import fallback_chain
from router.strategies.hook import HookLoader, RouteHook, hook
from router.strategies.pinned import custom_rules, manual
from router.strategies.rotation import round_robin
from router.strategies.scored import (
    best_for_task,
    cost_optimized,
    criticality,
    performance_optimized,
)

REGISTRY: Mapping[str, Strategy] = MappingProxyType(
    {
        "best_for_task": best_for_task,
        "cost_optimized": cost_optimized,
        "performance_optimized": performance_optimized,
        "criticality": criticality,
        "round_robin": round_robin,
        "fallback_chain": fallback_chain,
        "manual": manual,
        "custom_rules": custom_rules,
        "hook": hook,
    }
)


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name``; JobError listing the valid names when there is none."""
    found = REGISTRY.get(name)
    if found is None:
        raise JobError(f"unknown strategy {name!r}; choose one of: {', '.join(REGISTRY)}")
    return found


__all__ = [
    "REGISTRY",
    "Choice",
    "DecisionContext",
    "HookLoader",
    "LocalCounter",
    "RotationCounter",
    "RouteHook",
    "Services",
    "Strategy",
    "get_strategy",
]
