"""``lanes bench load``: a mixed batch against the shipped lanes and limits on the simulator,
with an interactive job every second during it; the default strategy and ``round_robin`` in
the same run, on the same workers.

The batch mixes work cheap lanes may take (code, tests, documentation, questions) with vital
work (security, payments, production) that must stay off them, in several sizes. Each arm
submits the whole batch at once, as ``lanes batch`` does, and waits for every job; meanwhile a
thread submits one interactive job a second, each waited for in a thread of its own.

Figures per arm: ``jobs_per_s`` (batch jobs ÷ the time until the last one ended),
``cost_usd`` (what every job of the arm cost), ``deliveries_per_job`` (messages per job, all
jobs of the arm), ``interactive_p50_wait_s`` / ``interactive_p95_wait_s`` (an interactive
job's time from submit to result, less its provider call), and the jobs by lane.

``ceiling_jobs_per_s``: the most jobs per second the lanes each job may use could start under
their limits, for jobs of the sizes the run observed (mean input and output tokens): every lane
for work a cheap lane may take, the lanes without the ``cheap`` tag for vital work, so
``min(all lanes' rate, other lanes' rate ÷ the vital share)``. A lane's rate is the least of
its requests, input and output tokens per minute and its concurrency over the simulated
latency. It is a sustained rate: a run of a few seconds can beat it, because the limiter's
buckets start with a minute's allowance.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lanes.bench.harness import bench_redis, derived_config, sim_process, worker_processes
from lanes.broker.app import wait_for_queues
from lanes.broker.result import Result
from lanes.client import Lanes
from lanes.deployment import open_deployment
from lanes.kernel.config import Config, SimMode
from lanes.kernel.taxonomy import Priority
from lanes.router.candidates import CHEAP_TAG
from lanes.router.load import instance_rate

LOAD_DB = 11
TIMEOUT_S = 900.0
INTERACTIVE_EVERY_S = 1.0
CHEAP_WORK = (
    "Write a Python function that {s}, with type hints",
    "Add pytest tests for a helper that {s}",
    "Write a docstring for a function that {s}",
    "Explain in two sentences how a function that {s} works",
)
VITAL_WORK = (
    "Review this login handler for SQL injection before it ships: it {s}",
    "Our payment webhook charges customers twice when it {s}; find the cause in production",
    "Production is down: the billing job that {s} deletes invoices; write the fix",
)
SUBJECTS = (
    "parses ISO dates", "merges overlapping intervals", "validates an email address",
    "computes a moving average", "flattens a nested list", "converts Roman numerals",
    "counts word frequencies", "checks balanced brackets",
)  # fmt: skip
MAX_TOKENS = (100, 200, 400, 800)
VITAL_EVERY = 4
"""One batch job in this many is vital work."""
INTERACTIVE = "Quick question: what does the regex ^a+b$ match?"


def batch_jobs(count: int, arm: str) -> list[dict[str, Any]]:
    """``count`` batch jobs (as ``lanes batch`` sends them), one in :data:`VITAL_EVERY`
    vital, sizes cycling; distinct per arm (the cache is off too: no answer of one arm serves
    the other). Each says whether it is vital, as a caller who knows does, so the share is
    exact whatever the classifier makes of the text."""
    jobs = []
    for i in range(count):
        vital = i % VITAL_EVERY == 0
        templates = VITAL_WORK if vital else CHEAP_WORK
        text = templates[i % len(templates)].format(s=SUBJECTS[i % len(SUBJECTS)])
        jobs.append({"prompt": f"{text} (#{arm}-{i})", "max_tokens": MAX_TOKENS[i % 4],
                     "priority": Priority.BATCH.value, "vital": vital})  # fmt: skip
    return jobs


def load_bench_config(config: Config, directory: Path, redis_url: str) -> tuple[Config, Path]:
    """The shipped lanes and limits, every lane on the simulator, the cache off, a ledger of
    the bench's own."""
    database = directory / "load-ledger.db"
    database.unlink(missing_ok=True)

    def change(data: dict[str, Any]) -> None:
        data.update(redis_url=redis_url, redis_prefix="bench-load",
                    database_url=f"sqlite:///{database.resolve()}")  # fmt: skip
        data["simulator"].update(mode=SimMode.ALWAYS.value, enforce_limits=True)
        data["cache"] = {**data.get("cache", {}), "enabled": False}

    return derived_config(config, directory / "load-config.yaml", change)


@dataclass
class Arm:
    """What one arm's jobs did."""

    name: str
    batch: list[Result] = field(default_factory=list)
    interactive: list[tuple[float, Result]] = field(default_factory=list)
    """(seconds from submit to result, result) of each interactive job."""
    elapsed_s: float = 0.0

    def figures(self) -> dict[str, Any]:
        every = [*self.batch, *(r for _, r in self.interactive)]
        waits = sorted(max(0.0, total - r.latency_s) for total, r in self.interactive)
        return {
            "jobs_per_s": round(len(self.batch) / self.elapsed_s, 2) if self.elapsed_s else 0.0,
            "cost_usd": round(sum(r.cost_usd for r in every), 6),
            "deliveries_per_job": round(statistics.fmean(r.deliveries for r in every), 3),
            "interactive_p50_wait_s": round(_percentile(waits, 0.50), 3),
            "interactive_p95_wait_s": round(_percentile(waits, 0.95), 3),
            "interactive_jobs": len(self.interactive),
            "failed": sum(not r.ok for r in every),
            "lanes": dict(Counter(r.instance for r in self.batch).most_common()),
        }


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def run_load(
    config: Config,
    *,
    jobs: int,
    latency_s: float,
    workers: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    state = Path(config.state_dir)
    logs = state / "logs"
    with bench_redis(config, db=LOAD_DB) as url:
        cfg, path = load_bench_config(config, state / "bench-load", url)
        env = {"REDIS_URL": url, "LANES_CONFIG": str(path.resolve())}
        with sim_process(path, latency_s=latency_s, limits=True, log_dir=logs, env=env) as sim:
            env["LANES_SIMULATOR__PORT"] = sim.rsplit(":", 1)[1]
            with worker_processes(cfg, cfg.lanes(), count=workers,
                                  concurrency=cfg.worker.concurrency, env=env, log_dir=logs,
                                  name="bench-load"):  # fmt: skip
                with open_deployment(cfg, url) as deployment:
                    wait_for_queues(deployment.app, set(cfg.lanes()))
                with Lanes(cfg, url) as lanes:
                    arms = [
                        _arm(lanes, name, jobs, progress) for name in ("default", "round_robin")
                    ]
    observed = [r for arm in arms for r in arm.batch]
    return {
        "jobs": jobs,
        "latency_s": latency_s,
        "ceiling_jobs_per_s": round(ceiling(cfg, observed, latency_s), 2),
        **{arm.name: arm.figures() for arm in arms},
    }


def _arm(lanes: Lanes, name: str, count: int, progress: Callable[[str], None]) -> Arm:
    """Submit the batch at once, an interactive job a second until it is done; wait for all."""
    strategy = None if name == "default" else name
    arm = Arm(name)
    progress(f"{name}: {count} batch jobs, an interactive job every {INTERACTIVE_EVERY_S:g}s")
    done = threading.Event()
    with ThreadPoolExecutor(max_workers=64) as pool:
        ticker = pool.submit(_interactive, lanes, strategy, done, pool, arm)
        start = time.monotonic()
        handles = [lanes.submit(job, strategy=strategy) for job in batch_jobs(count, name)]
        arm.batch = [h.get(timeout_s=TIMEOUT_S, raise_on_failure=False) for h in handles]
        arm.elapsed_s = time.monotonic() - start
        done.set()
        for waiting in ticker.result():
            waiting.result()
    return arm


def _interactive(
    lanes: Lanes, strategy: str | None, done: threading.Event, pool: ThreadPoolExecutor, arm: Arm
) -> list[Future[None]]:
    """Until ``done``: one interactive job a second, each waited for in its own thread."""
    waiting: list[Future[None]] = []
    while not done.wait(INTERACTIVE_EVERY_S):
        waiting.append(pool.submit(_one_interactive, lanes, strategy, arm))
    return waiting


def _one_interactive(lanes: Lanes, strategy: str | None, arm: Arm) -> None:
    start = time.monotonic()
    handle = lanes.submit({"prompt": INTERACTIVE, "max_tokens": 100}, strategy=strategy)
    result = handle.get(timeout_s=TIMEOUT_S, raise_on_failure=False)
    arm.interactive.append((time.monotonic() - start, result))


def ceiling(config: Config, results: list[Result], latency_s: float) -> float:
    """The most batch jobs per second the lanes could start (see the module's docstring)."""
    if not results:
        return 0.0
    size_in = statistics.fmean(r.input_tokens for r in results)
    size_out = statistics.fmean(r.output_tokens for r in results)
    rates = {lane: instance_rate(config, spec, size_in, size_out, latency_s)
             for lane, spec in config.instances.items() if spec.enabled}  # fmt: skip
    every = sum(rates.values())
    not_cheap = sum(r for lane, r in rates.items()
                    if CHEAP_TAG not in config.instances[lane].tags)  # fmt: skip
    vital_share = 1 / VITAL_EVERY
    return min(every, not_cheap / vital_share)
