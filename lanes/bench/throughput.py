"""``lanes bench throughput``: jobs/s through lanes vs plain Celery, and CPU ms per job.

Three arms, the same number of jobs each, on the same Redis (its own db) and the same worker
processes (started with :mod:`lanes.bench.celery_app`: every lane plus the bench queue, the same
pool and concurrency); the simulator answers at once in a process of its own:

- ``lanes``: ``Lanes.submit`` (route, track, enqueue) and ``handle.get``; the worker runs the
  job through lanes (limits, lane state, results) and calls the provider;
- ``sdk_task``: what a user writes without lanes: a plain Celery task that makes the same
  provider call (same instance and model as lanes decides, routed before the timed span; a pool
  stands for its first member) with the provider's own client, same prompts and max_tokens;
- ``celery_noop``: a plain Celery task that returns its argument: the floor of a round trip;
- ``lanes_no_ledger``: the ``lanes`` arm again, on workers whose config turns the ledger off
  (``ledger.enabled: false``), on a Redis db of their own (so the two sets of workers do not
  share queues). The ``lanes`` arm's workers hand every event off and drain them into a SQLite
  ledger of the bench's own (never the user's).

The response cache is off in both (the prompts repeat from round to round: a cache would
answer them without a call, which is not what this measures). The arms run in alternating
rounds and each keeps its best rate: ``ratio`` = lanes ÷ celery_noop, ``ratio_vs_sdk_task`` =
lanes ÷ sdk_task, ``ledger_ratio`` = lanes ÷ lanes_no_ledger; ``ratio_vs_sdk_task_median`` is the
median of the rounds' own lanes ÷ sdk_task. ``cpu_ms_per_job`` gives, per arm, the
CPU milliseconds per job spent by the dispatcher (this process), the workers, the simulator
and the Redis server (all of it: ``INFO cpu``), and their total, AVERAGED over the timed
rounds (all their CPU ÷ all their jobs; warm-ups excluded).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from statistics import median
from typing import Any

from lanes.bench.harness import (
    BENCH_APP,
    BENCH_QUEUE,
    CPU_KINDS,
    NOOP_TASK,
    SDK_TASK,
    CpuMeter,
    add_bench_queue,
    bench_redis,
    derived_config,
    peak_rss_mb,
    sim_subprocess,
    worker_processes,
)
from lanes.broker.app import wait_for_queues
from lanes.client import Lanes
from lanes.deployment import Deployment, open_deployment
from lanes.kernel.config import Config, SimMode
from lanes.router.job import Job
from lanes.stores.sql import open_ledger

PROMPTS = (
    "Fix the off-by-one error in the pagination helper",
    "Write unit tests for the invoice total calculation",
    "Summarise the design doc for the notification service",
    "Rename the variable usr to user across the module",
    "Review this function for SQL injection: query(f'SELECT * FROM t WHERE id={x}')",
    "Add a docstring to parse_config explaining each argument",
    "What is the difference between a mutex and a semaphore?",
    "Refactor the retry loop into a reusable decorator",
)
MAX_TOKENS = 64
WARMUP_JOBS = 50
TIMEOUT_S = 120
ARMS = ("celery_noop", "sdk_task", "lanes", "lanes_no_ledger")
"""Order of the arms in each round."""
CPU_ARMS = ("lanes", "lanes_no_ledger", "sdk_task", "celery_noop")
"""Order of the arms in ``cpu_ms_per_job``."""
RATE_KEYS = {
    "lanes": "lanes_jobs_per_s",
    "lanes_no_ledger": "lanes_no_ledger_jobs_per_s",
    "celery_noop": "celery_noop_per_s",
    "sdk_task": "sdk_task_per_s",
}
NO_LEDGER_DB = 14


def bench_config(
    config: Config, directory: Path, redis_url: str, *, ledger: bool = True
) -> tuple[Config, Path]:
    """The config on ``redis_url`` with limits and the response cache off, every lane on the
    simulator and the ledger (on or off) in ``directory``, written to a file there."""
    database = directory / "ledger.db"
    database.unlink(missing_ok=True)

    def change(data: dict[str, Any]) -> None:
        data["redis_url"] = redis_url
        data["simulator"].update(mode=SimMode.ALWAYS.value, enforce_limits=False)
        data["database_url"] = f"sqlite:///{database.resolve()}"
        data["ledger"] = {**data.get("ledger", {}), "enabled": ledger}
        data["cache"] = {**data.get("cache", {}), "enabled": False}
        for inst in data["instances"].values():
            inst["limits"] = {}

    return derived_config(config, directory / "bench-config.yaml", change)


def run_throughput(
    config: Config,
    *,
    jobs: int,
    concurrency: int,
    workers: int,
    rounds: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    state = Path(config.state_dir)
    logs = state / "logs"
    with bench_redis(config) as url, bench_redis(config, db=NO_LEDGER_DB) as url_off:
        cfg, path = bench_config(config, state / "bench", url)
        cfg_off, path_off = bench_config(config, state / "bench" / "no-ledger", url_off,
                                         ledger=False)  # fmt: skip
        env = {"REDIS_URL": url, "LANES_CONFIG": str(path.resolve())}
        env_off = {"REDIS_URL": url_off, "LANES_CONFIG": str(path_off.resolve())}
        with sim_subprocess(path, latency_s=0.0, limits=False, log_dir=logs, env=env) as (
            sim_url,
            sim,
        ):
            env["LANES_SIMULATOR__PORT"] = env_off["LANES_SIMULATOR__PORT"] = sim_url.rsplit(
                ":", 1
            )[1]
            queues = [*cfg.lanes(), BENCH_QUEUE]
            with worker_processes(cfg, queues, count=workers, concurrency=concurrency, env=env,
                                  log_dir=logs, app=BENCH_APP) as procs, \
                 worker_processes(cfg_off, cfg_off.lanes(), count=workers,
                                  concurrency=concurrency, env=env_off, log_dir=logs,
                                  name="bench-off") as procs_off:  # fmt: skip
                with open_deployment(cfg, url) as bench, \
                     open_deployment(cfg_off, url_off) as bench_off:  # fmt: skip
                    meters = {
                        "on": CpuMeter([proc.pid for proc in procs], sim.pid, bench.redis),
                        "off": CpuMeter([proc.pid for proc in procs_off], sim.pid, bench.redis),
                    }
                    result = _measure((bench, bench_off), meters, jobs, rounds, progress)
                rss = max(peak_rss_mb(proc.pid) for proc in procs)
    outcomes = ledger_outcomes(cfg)
    return {**result, "ledger_outcomes": outcomes, "worker_peak_rss_mb": round(rss, 1),
            "workers": workers}  # fmt: skip


def ledger_outcomes(cfg: Config) -> int:
    """Jobs the ``lanes`` arm's ledger recorded (every one of them, once the workers drained
    at shutdown): proof that the ledger was on while it was measured."""
    ledger = open_ledger(cfg)
    try:
        return sum(row.outcomes for row in ledger.stats(datetime.fromtimestamp(0, UTC)))
    finally:
        ledger.close()


@dataclass
class Arm:
    """One kind of run: ``run(n)`` sends ``n`` jobs and waits for all of them."""

    name: str
    run: Callable[[int], None]
    meter: CpuMeter | None = None
    """What meters its CPU (the set of workers that serves it)."""
    rates: list[float] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CPU_KINDS, 0.0))

    def record(self, jobs: int, elapsed_s: float, cpu_s: dict[str, float]) -> None:
        self.rates.append(jobs / elapsed_s)
        for kind, used_s in cpu_s.items():
            self.cpu_s[kind] += used_s


def _measure(
    deployments: tuple[Deployment, Deployment],
    meters: dict[str, CpuMeter],
    jobs: int,
    rounds: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """``rounds`` alternating runs of each arm; each arm keeps its best rate, so a burst of
    load from elsewhere on the machine does not decide the ratios."""
    bench, bench_off = deployments
    cfg, cfg_off = bench.config, bench_off.config
    app = bench.app
    add_bench_queue(app)
    wait_for_queues(app, {*cfg.lanes(), BENCH_QUEUE})
    wait_for_queues(bench_off.app, set(cfg_off.lanes()))
    with Lanes(cfg, bench.redis_url) as lanes, Lanes(cfg_off, bench_off.redis_url) as lanes_off:
        calls = sdk_calls(cfg, lanes, jobs)  # routed here, outside the timed runs
        on, off = meters["on"], meters["off"]
        arms = [
            Arm("celery_noop",
                lambda n: _celery_run(app, NOOP_TASK, [[i] for i in range(n)]), on),
            Arm("sdk_task", lambda n: _celery_run(app, SDK_TASK, calls[:n]), on),
            Arm("lanes", lambda n: _lanes_run(lanes, n), on),
            Arm("lanes_no_ledger", lambda n: _lanes_run(lanes_off, n), off),
        ]  # fmt: skip
        _alternate(arms, jobs, rounds, progress)
    return report(jobs, rounds, {arm.name: arm for arm in arms})


def _alternate(arms: list[Arm], jobs: int, rounds: int, progress: Callable[[str], None]) -> None:
    """An untimed warm-up of each arm, then ``rounds`` rounds of each, timed and metered."""
    for arm in arms:
        arm.run(min(WARMUP_JOBS, jobs))
    for n in range(1, rounds + 1):
        for arm in arms:
            progress(f"round {n}/{rounds}: {arm.name}, {jobs} jobs")
            assert arm.meter is not None, f"arm {arm.name} has no CPU meter"
            elapsed_s, cpu_s = arm.meter.measure(partial(arm.run, jobs))
            arm.record(jobs, elapsed_s, cpu_s)


def report(jobs: int, rounds: int, arms: dict[str, Arm]) -> dict[str, Any]:
    """The JSON figures: best rate of each arm, the ratios, every round (with its own
    lanes ÷ sdk_task, and their median: rounds that ran side by side compared), CPU ms per job."""
    best = {name: max(arm.rates) for name, arm in arms.items()}
    by_round = [
        lanes / sdk for lanes, sdk in zip(arms["lanes"].rates, arms["sdk_task"].rates, strict=True)
    ]
    return {
        "jobs": jobs,
        **{RATE_KEYS[name]: round(best[name], 1) for name in RATE_KEYS},
        "ratio": round(best["lanes"] / best["celery_noop"], 3),
        "ratio_vs_sdk_task": round(best["lanes"] / best["sdk_task"], 3),
        "ledger_ratio": round(best["lanes"] / best["lanes_no_ledger"], 3),
        "ratio_vs_sdk_task_median": round(median(by_round), 3),
        "rounds": [
            {
                **{RATE_KEYS[name]: round(arms[name].rates[i], 1) for name in RATE_KEYS},
                "ratio_vs_sdk_task": round(by_round[i], 3),
            }
            for i in range(rounds)
        ],
        "cpu_ms_per_job": {
            name: cpu_ms_per_job(arms[name].cpu_s, jobs * rounds) for name in CPU_ARMS
        },
    }


def cpu_ms_per_job(cpu_s: dict[str, float], jobs: int) -> dict[str, float]:
    """CPU seconds by kind over ``jobs`` jobs → ms per job by kind, and their total."""
    per_job_ms = {kind: cpu_s[kind] * 1000 / jobs for kind in CPU_KINDS}
    return {
        **{kind: round(ms, 3) for kind, ms in per_job_ms.items()},
        "total": round(sum(per_job_ms.values()), 3),
    }


def prompt(i: int) -> str:
    return f"{PROMPTS[i % len(PROMPTS)]} (#{i})"


def sdk_calls(cfg: Config, lanes: Lanes, n: int) -> list[list[Any]]:
    """Arguments of ``bench.sdk_call`` for the first ``n`` prompts: the instance (a pool's first
    member) and model lanes' router picks for each, the prompt and max_tokens."""
    calls: list[list[Any]] = []
    for i in range(n):
        step = lanes.router.decide(Job(prompt=prompt(i), max_tokens=MAX_TOKENS)).chain[0]
        calls.append([cfg.members(step.instance)[0], step.model, prompt(i), MAX_TOKENS])
    return calls


def _celery_run(app: Any, task: str, calls: list[list[Any]]) -> None:
    """A plain Celery run: send ``task`` once per argument list, then wait for every result."""
    results = [app.send_task(task, args=args, queue=BENCH_QUEUE) for args in calls]
    for result in results:
        result.get(timeout=TIMEOUT_S, interval=0.01)


def _lanes_run(lanes: Lanes, n: int) -> None:
    handles = [lanes.submit({"prompt": prompt(i), "max_tokens": MAX_TOKENS}) for i in range(n)]
    for handle in handles:
        handle.get(timeout_s=TIMEOUT_S)
