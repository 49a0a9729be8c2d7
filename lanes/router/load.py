"""How long a job would wait on each target before its call starts: the work already on the
target's lanes, divided by the jobs per second those lanes can take under their limits.

An instance's rate for a job is the least of what each of its limits allows: requests per
minute, input and output tokens per minute (at this job's sizes), and concurrency over the
typical latency of the instance's models (a limit of 0 is no limit). Once the instance has
answered calls, the moving means of their latency and output tokens (``LaneStatus``, kept by
the workers) stand in for the configured latency and the job's estimated output: the jobs
ahead of it are what drains, and they are the lane's usual work, measured. The first jobs of a
backlog start as fast as its concurrency lets while its buckets hold capacity
(``LaneStatus.headroom``: a minute's allowance when the lane has been idle), only the rest at
its rate. A pool's rate, backlog and headroom are its members' summed. The backlog
(``LaneStatus.backlog``) counts every unfinished job whose next message is on the lane,
queued or waiting in a worker. A target with nothing waiting waits 0; a target whose lanes
set no limit at all is taken to keep up (0).

A model's measured latency on a lane (``LaneStatus.model_latency_s``) also replaces its
configured latency there: a call's expected latency is what that lane shows for that model.

The wait feeds the latency part of the score (``Option.latency_s`` = model latency + wait),
so a saturated lane loses work to the next acceptable one. It is an estimate for ranking,
never a filter: the hard rules decide first.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field

from lanes.kernel.config.models import Config, InstanceSpec
from lanes.router.candidates import CandidateTable
from lanes.router.lane_state import LaneStatus

IDLE = LaneStatus()
MAX_WAIT_S = 24 * 3600.0
"""The longest wait an estimate says (a lane that takes nothing at all)."""


def instance_rate(
    config: Config,
    spec: InstanceSpec,
    input_tokens: float,
    output_tokens: float,
    latency_s: float | None = None,
) -> float:
    """Jobs per second ``spec`` can start for a job of these sizes (``inf``: no limit); its
    concurrency is spread over ``latency_s``, else over the typical latency of its models."""
    limits = spec.limits
    rates = [concurrency_rate(config, spec, latency_s)]
    if limits.requests_per_min:
        rates.append(limits.requests_per_min / 60)
    if limits.input_tokens_per_min and input_tokens:
        rates.append(limits.input_tokens_per_min / 60 / input_tokens)
    if limits.output_tokens_per_min and output_tokens:
        rates.append(limits.output_tokens_per_min / 60 / output_tokens)
    return min(rates)


def concurrency_rate(config: Config, spec: InstanceSpec, latency_s: float | None = None) -> float:
    """Jobs per second ``spec``'s concurrency limit lets start (``inf``: no limit): calls of
    ``latency_s``, else of the typical latency of its models."""
    if not spec.limits.concurrency:
        return math.inf
    if latency_s is None:
        latency_s = typical_latency_s(config, spec)
    return spec.limits.concurrency / max(latency_s, 0.001)


def typical_latency_s(config: Config, spec: InstanceSpec) -> float:
    """The mean configured latency of ``spec``'s models (1 s when none is known)."""
    latencies = [config.models[m].latency_s for m in spec.models if m in config.models]
    return sum(latencies) / len(latencies) if latencies else 1.0


@dataclass(frozen=True)
class Drain:
    """How fast a lane (or a pool) works through its backlog: its first ``headroom`` jobs
    (None: unknown, taken as none) as fast as concurrency lets (``burst``), the rest at the
    ``rate`` every limit allows."""

    rate: float
    burst: float = math.inf
    headroom: float | None = None

    def __add__(self, other: Drain) -> Drain:
        both = (
            None
            if self.headroom is None or other.headroom is None
            else (self.headroom + other.headroom)
        )
        return Drain(self.rate + other.rate, self.burst + other.burst, both)


def lane_drain(
    config: Config, instance: str, status: LaneStatus, input_tokens: float, output_tokens: float
) -> Drain:
    """How fast ``instance`` starts jobs, measured where its calls were (latency, output
    tokens), else estimated for a job of these sizes."""
    spec = config.instances[instance]
    output = status.output_tokens if status.output_tokens is not None else output_tokens
    return Drain(
        instance_rate(config, spec, input_tokens, output, status.latency_s),
        concurrency_rate(config, spec, status.latency_s),
        status.headroom,
    )


def backlog_s(drain: Drain, backlog: int) -> float | None:
    """Seconds a lane draining as ``drain`` says needs to start ``backlog`` jobs: 0 for none,
    None when its limits set no bound (its rate is ``inf``), at most :data:`MAX_WAIT_S`."""
    if not backlog:
        return 0.0
    if math.isinf(drain.rate):
        return None
    early = min(float(backlog), drain.headroom or 0.0)
    late = backlog - early
    if late and drain.rate <= 0:
        return MAX_WAIT_S
    seconds = early / drain.burst + (late / drain.rate if late else 0.0)
    return min(MAX_WAIT_S, seconds)


@dataclass(frozen=True)
class TargetLoad:
    """What the lanes' state says of each target for one job: the seconds it would wait
    there before its call starts, and each model's measured latency there."""

    waits: Mapping[str, float] = field(default_factory=dict)
    latencies: Mapping[tuple[str, str], float] = field(default_factory=dict)
    """(target, model) -> the mean latency of that model's recent calls on the target."""

    def wait_s(self, target: str) -> float:
        return self.waits.get(target, 0.0)

    def latency_s(self, target: str, model: str, configured: float) -> float:
        """The model's measured latency on the target, else ``configured``."""
        return self.latencies.get((target, model), configured)


def target_load(
    config: Config,
    table: CandidateTable,
    statuses: Mapping[str, LaneStatus],
    input_tokens: int,
    output_tokens: int,
) -> TargetLoad:
    """The :class:`TargetLoad` of a job of these sizes."""
    return TargetLoad(
        queue_waits(config, table, statuses, input_tokens, output_tokens),
        measured_latencies(table, statuses),
    )


def measured_latencies(
    table: CandidateTable, statuses: Mapping[str, LaneStatus]
) -> dict[tuple[str, str], float]:
    """(target, model) -> the mean of its members' measured latency for the model, for the
    pairs some member has measured."""
    if not any(status.model_latency_s for status in statuses.values()):
        return {}
    out: dict[tuple[str, str], float] = {}
    for name, target in table.targets.items():
        for model in target.models:
            seen = [statuses[m].model_latency_s[model] for m in target.members
                    if m in statuses and model in statuses[m].model_latency_s]  # fmt: skip
            if seen:
                out[name, model] = sum(seen) / len(seen)
    return out


def queue_waits(
    config: Config,
    table: CandidateTable,
    statuses: Mapping[str, LaneStatus],
    input_tokens: int,
    output_tokens: int,
) -> dict[str, float]:
    """Seconds a job of these sizes would wait on each target with a backlog (others: none)."""
    if not any(status.backlog for status in statuses.values()):
        return {}
    waits: dict[str, float] = {}
    for name, target in table.targets.items():
        members = [(m, statuses.get(m, IDLE)) for m in target.members]
        backlog = sum(status.backlog for _, status in members)
        if not backlog:
            continue
        drains = [lane_drain(config, m, s, input_tokens, output_tokens) for m, s in members]
        wait_s = backlog_s(functools.reduce(operator.add, drains), backlog)
        if wait_s:
            waits[name] = wait_s
    return waits
