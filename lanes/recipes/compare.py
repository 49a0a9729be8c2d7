"""``lanes compare``: the same job on several lanes or models, side by side.

Each target is a lane (or pool) or ``lane:model``; the job is pinned to it and sent fresh (not
answered from the response cache), all at once as one Celery group.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lanes.broker.result import Result
from lanes.kernel.config import Config
from lanes.kernel.errors import ConfigError
from lanes.recipes.ports import RecipeClient


@dataclass(frozen=True)
class Target:
    lane: str
    model: str | None = None

    @property
    def label(self) -> str:
        return f"{self.lane}:{self.model}" if self.model else self.lane


def parse_targets(config: Config, text: str) -> list[Target]:
    """``a,b:model,c`` as targets, each checked against the config and named once (the same
    target twice would buy the same answer twice)."""
    targets: list[Target] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        lane, _, model = item.partition(":")
        target = _checked(config, Target(lane, model or None))
        if target in targets:
            raise ConfigError(
                f"{target.label} is listed twice", key="--lanes",
                fix="name each lane (or lane:model) once",
            )  # fmt: skip
        targets.append(target)
    if len(targets) < 2:
        raise ConfigError(
            "compare needs at least two targets", key="--lanes",
            fix="e.g. --lanes claude1,zai or --lanes claude1:claude-haiku-4-5,koala",
        )  # fmt: skip
    return targets


def _checked(config: Config, target: Target) -> Target:
    targets = [*config.instances, *config.pools]
    if target.lane not in targets:
        raise ConfigError(f"unknown lane {target.lane!r}", key="--lanes",
                          fix=f"use one of {', '.join(targets)}")  # fmt: skip
    served = {m for name in config.members(target.lane) for m in config.instances[name].models}
    if target.model and target.model not in served:
        raise ConfigError(
            f"{target.lane} does not serve {target.model!r}", key="--lanes",
            fix=f"use one of {', '.join(sorted(served))}",
        )  # fmt: skip
    return target


def compare_jobs(job: dict[str, Any], targets: Sequence[Target]) -> list[dict[str, Any]]:
    """``job`` pinned to each target, sent fresh (never answered from the cache)."""
    jobs = []
    for target in targets:
        pinned = {**job, "instance": target.lane, "cache": False}
        pinned.pop("id", None)
        if target.model:
            pinned["model"] = target.model
        jobs.append(pinned)
    return jobs


@dataclass(frozen=True)
class Comparison:
    """Each target's result (None: not finished in time, and cancelled), and the jobs given up
    on (:class:`lanes.dispatch.waiting.Collected`)."""

    targets: list[Target]
    results: list[Result | None]
    elapsed_s: float
    calls_in_flight: int = 0
    """Calls of cancelled jobs that had started: they finish and are billed."""

    def to_json(self) -> dict[str, Any]:
        return {
            "elapsed_s": round(self.elapsed_s, 3),
            "calls_in_flight": self.calls_in_flight,
            "runs": [_run_json(t, r) for t, r in zip(self.targets, self.results, strict=True)],
        }


def _run_json(target: Target, result: Result | None) -> dict[str, Any]:
    if result is None:
        return {"target": target.label, "status": "timeout"}
    return {
        "target": target.label,
        "job_id": result.job_id,
        "lane": result.instance,
        "model": result.model,
        "status": result.status,
        "latency_s": round(result.latency_s, 3),
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "cost_usd": round(result.cost_usd, 6),
        "cached": result.cached,
        "cost_saved_usd": round(result.cost_saved_usd, 6),
        "simulated": result.simulated,
        "fallbacks": len(result.fallbacks),
        "error": result.error,
        "text": result.text,
    }


def compare(
    lanes: RecipeClient,
    job: dict[str, Any],
    targets: Sequence[Target],
    *,
    timeout_s: float = 600.0,
) -> Comparison:
    """Run ``job`` on every target at once and wait for all of them, ``timeout_s`` at most from
    the start; what is unfinished then is cancelled. :class:`NoWorker` (nothing left
    running) when a target's lane has no worker."""
    started = time.monotonic()
    handles = lanes.submit_group(compare_jobs(job, targets), strategy="manual")
    reason = f"not finished within lanes compare --timeout {timeout_s:g}s"
    got = lanes.collect(handles, started + timeout_s, reason)
    if got.no_worker is not None:
        raise got.no_worker.noting(f"; {len(got.cancelled)} job(s) of the comparison cancelled")
    return Comparison(list(targets), got.results, time.monotonic() - started, got.calls_in_flight)
