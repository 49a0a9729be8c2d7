"""How long a job would wait on each target before its call starts: the work already on the
target's lanes, divided by the jobs per second those lanes can take under their limits.

An instance's rate for a job is the least of what each of its limits allows: requests per
minute, input and output tokens per minute (at this job's sizes), and concurrency over the
typical latency of the instance's models (a limit of 0 is no limit). A pool's rate and backlog
are its members' summed. The backlog (``LaneStatus.backlog``) counts every unfinished job whose
next message is on the lane, queued or waiting in a worker. A target with nothing waiting
waits 0; a target whose lanes set no limit at all is taken to keep up (0).

The wait feeds the latency part of the score (``Option.latency_s`` = model latency + wait),
so a saturated lane loses work to the next acceptable one. It is an estimate for ranking,
never a filter: the hard rules decide first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from lanes.kernel.config.models import Config, InstanceSpec
from lanes.router.candidates import CandidateTable
from lanes.router.lane_state import LaneStatus

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
    rates = [math.inf]
    if limits.requests_per_min:
        rates.append(limits.requests_per_min / 60)
    if limits.input_tokens_per_min and input_tokens:
        rates.append(limits.input_tokens_per_min / 60 / input_tokens)
    if limits.output_tokens_per_min and output_tokens:
        rates.append(limits.output_tokens_per_min / 60 / output_tokens)
    if limits.concurrency:
        if latency_s is None:
            latencies = [config.models[m].latency_s for m in spec.models if m in config.models]
            latency_s = sum(latencies) / len(latencies) if latencies else 1.0
        rates.append(limits.concurrency / max(latency_s, 0.001))
    return min(rates)


def backlog_s(rate: float, backlog: int) -> float | None:
    """Seconds a lane that starts ``rate`` jobs a second needs to start ``backlog`` jobs: 0
    for none, None when its limits set no bound (``rate`` is ``inf``), at most
    :data:`MAX_WAIT_S`."""
    if not backlog:
        return 0.0
    if math.isinf(rate):
        return None
    return MAX_WAIT_S if rate <= 0 else min(MAX_WAIT_S, backlog / rate)


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
        backlog = sum(statuses[m].backlog for m in target.members if m in statuses)
        if not backlog:
            continue
        rate = sum(
            instance_rate(config, config.instances[m], input_tokens, output_tokens)
            for m in target.members
        )
        wait_s = backlog_s(rate, backlog)
        if wait_s is not None:
            waits[name] = wait_s
    return waits
