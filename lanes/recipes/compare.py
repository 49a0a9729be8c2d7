"""``lanes compare``: the same job on several lanes or models, side by side.

Each target is a lane (or pool) or ``lane:model``; the job is pinned to it and sent fresh (not
answered from the response cache), all at once as one Celery group.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lanes.broker.handle import JobHandle
from lanes.broker.result import Result
from lanes.kernel.config import Config
from lanes.kernel.errors import ConfigError
from lanes.recipes.ports import RecipeClient
from lanes.recipes.rows import job_rows


@dataclass(frozen=True)
class Target:
    """An instance or a pool (its lane, or a member's), optionally with a model."""

    instance: str
    model: str | None = None

    @property
    def label(self) -> str:
        return f"{self.instance}:{self.model}" if self.model else self.instance


def parse_targets(config: Config, text: str) -> list[Target]:
    """``a,b:model,c`` as targets, each checked against the config and named once (the same
    target twice would buy the same answer twice)."""
    targets: list[Target] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        instance, _, model = item.partition(":")
        target = _checked(config, Target(instance, model or None))
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
    if target.instance not in targets:
        raise ConfigError(f"unknown lane {target.instance!r}", key="--lanes",
                          fix=f"use one of {', '.join(targets)}")  # fmt: skip
    served = {m for name in config.members(target.instance) for m in config.instances[name].models}
    if target.model and target.model not in served:
        raise ConfigError(
            f"{target.instance} does not serve {target.model!r}", key="--lanes",
            fix=f"use one of {', '.join(sorted(served))}",
        )  # fmt: skip
    return target


def compare_jobs(job: dict[str, Any], targets: Sequence[Target]) -> list[dict[str, Any]]:
    """``job`` pinned to each target, sent fresh (never answered from the cache)."""
    jobs = []
    for target in targets:
        pinned = {**job, "instance": target.instance, "cache": False}
        pinned.pop("id", None)
        if target.model:
            pinned["model"] = target.model
        jobs.append(pinned)
    return jobs


@dataclass(frozen=True)
class Comparison:
    """Each target's result (None: not finished in time, and cancelled), and the jobs given
    up on (:class:`lanes.dispatch.waiting.Collected`). ``handles``: the jobs, in the order of
    ``targets`` (their rows name a cancelled job and where it was sent)."""

    targets: list[Target]
    results: list[Result | None]
    elapsed_s: float
    calls_in_flight: int = 0
    """Calls of cancelled jobs that had started: they finish and are billed."""
    handles: list[JobHandle] = field(default_factory=list)
    cancel_reason: str = "not finished in time"
    """Why the unfinished jobs were cancelled (their rows' error says it)."""

    def to_json(self) -> dict[str, Any]:
        rows = job_rows(self.results, self.handles, f"cancelled: {self.cancel_reason}")
        return {
            "elapsed_s": round(self.elapsed_s, 3),
            "calls_in_flight": self.calls_in_flight,
            "runs": [{"target": t.label, **row} for t, row in zip(self.targets, rows, strict=True)],
        }


def compare(
    client: RecipeClient,
    job: dict[str, Any],
    targets: Sequence[Target],
    *,
    timeout_s: float = 600.0,
) -> Comparison:
    """Run ``job`` on every target at once and wait for all of them, ``timeout_s`` at most from
    the start; what is unfinished then is cancelled. :class:`NoWorker` (nothing left
    running) when a target's lane has no worker."""
    started = time.monotonic()
    handles = client.submit_group(compare_jobs(job, targets), strategy="manual")
    reason = f"not finished within lanes compare --timeout {timeout_s:g}s"
    got = client.collect(handles, started + timeout_s, reason)
    if got.no_worker is not None:
        raise got.no_worker.noting(f"; {len(got.cancelled)} job(s) of the comparison cancelled")
    return Comparison(list(targets), got.results, time.monotonic() - started,
                      got.calls_in_flight, handles, reason)  # fmt: skip
