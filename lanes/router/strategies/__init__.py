"""Routing strategies by name. Each is a function ``(DecisionContext) -> Choice``.

Keyed by :class:`lanes.kernel.taxonomy.StrategyName` (a test checks that every name has one);
:func:`get_strategy` turns an unknown one into a :class:`JobError` listing the valid names.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from lanes.kernel.errors import JobError
from lanes.kernel.taxonomy import StrategyName
from lanes.router.hooks import HookLoader, RouteHook
from lanes.router.strategies.base import (
    Choice,
    DecisionContext,
    LocalCounter,
    RotationCounter,
    Services,
    Strategy,
)
from lanes.router.strategies.fallback_chain import fallback_chain
from lanes.router.strategies.hook import hook
from lanes.router.strategies.pinned import custom_rules, manual
from lanes.router.strategies.rotation import round_robin
from lanes.router.strategies.scored import (
    best_for_task,
    cost_optimized,
    criticality,
    performance_optimized,
)

REGISTRY: Mapping[str, Strategy] = MappingProxyType(
    {
        StrategyName.BEST_FOR_TASK: best_for_task,
        StrategyName.COST_OPTIMIZED: cost_optimized,
        StrategyName.PERFORMANCE_OPTIMIZED: performance_optimized,
        StrategyName.CRITICALITY: criticality,
        StrategyName.ROUND_ROBIN: round_robin,
        StrategyName.FALLBACK_CHAIN: fallback_chain,
        StrategyName.MANUAL: manual,
        StrategyName.CUSTOM_RULES: custom_rules,
        StrategyName.HOOK: hook,
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
