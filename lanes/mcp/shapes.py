"""What the tools of ``lanes mcp`` answer: decisions and lanes as JSON objects (a job's result
is its row, :func:`lanes.recipes.rows.result_row`)."""

from __future__ import annotations

from typing import Any

from lanes.kernel.config import Config
from lanes.router.decision import Decision


def decision_json(decision: Decision) -> dict[str, Any]:
    """A routing decision with the classification's verdicts at the top level."""
    clf = decision.classification
    return {
        "instance": decision.instance,
        "pool": decision.pool,
        "model": decision.model,
        "strategy": decision.strategy,
        "estimated_cost_usd": decision.estimated_cost_usd,
        "estimated_latency_s": decision.estimated_latency_s,
        "confidence": decision.confidence,
        "vital": clf.vital if clf else None,
        "vital_reason": clf.vital_reason if clf else None,
        "task_type": clf.type.value if clf else None,
        "complexity": clf.complexity.value if clf else None,
        "difficulty": clf.difficulty if clf else None,
        "reasons": list(decision.reasons),
        "chain": [step.model_dump() for step in decision.chain],
    }


def models_json(config: Config) -> dict[str, Any]:
    """Every lane with its tags, pools and models (price per MTok after the lane's price
    multiplier, context window, quality)."""
    lanes = []
    for name, spec in config.instances.items():
        models = []
        for model_id in spec.models:
            model = config.models[model_id]
            models.append(
                {
                    "model": model_id,
                    "input_per_mtok": round(model.price.input_per_mtok * spec.price_multiplier, 6),
                    "output_per_mtok": round(
                        model.price.output_per_mtok * spec.price_multiplier, 6
                    ),
                    "context_window": model.context_window,
                    "quality": model.quality,
                }
            )
        lanes.append(
            {
                "lane": name,
                "provider": spec.provider.value,
                "enabled": spec.enabled,
                "tags": list(spec.tags),
                "pools": [pool for pool, members in config.pools.items() if name in members],
                "models": models,
            }
        )
    return {"lanes": lanes, "pools": {pool: list(m) for pool, m in config.pools.items()}}
