"""``lanes bench throughput``: jobs/s through dispatcher → lanes → simulator vs plain Celery.

Both runs use the same Redis, the same worker processes (all lanes plus the no-op queue, the
same pool and concurrency) and the same number of tasks; the simulator answers at once in a
process of its own. The two kinds run in alternating rounds; ratio = the best lanes jobs/s ÷
the best Celery no-op tasks/s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import (
    bench_redis,
    derived_config,
    peak_rss_mb,
    sim_process,
    worker_processes,
)
from broker.app import NOOP_QUEUE, NOOP_TASK, create_app, wait_for_queues
from kernel.config import Config, SimMode
from lanes.client import Lanes

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


def bench_config(config: Config, directory: Path, redis_url: str) -> tuple[Config, Path]:
    """The config on ``redis_url`` with limits off and every lane on the simulator, written to
    a file."""

    def change(data: dict[str, Any]) -> None:
        data["redis_url"] = redis_url
        data["simulator"].update(mode=SimMode.ALWAYS.value, enforce_limits=False)
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
    with bench_redis(config) as url:
        cfg, path = bench_config(config, state / "bench", url)
        env = {"REDIS_URL": url, "LANES_CONFIG": str(path.resolve())}
        with sim_process(path, latency_s=0.0, limits=False, log_dir=state / "logs", env=env) as sim:
            port = sim.rsplit(":", 1)[1]
            env["LANES_SIMULATOR__PORT"] = port
            queues = [*cfg.lanes(), NOOP_QUEUE]
            with worker_processes(cfg, queues, count=workers, concurrency=concurrency, env=env,
                                  log_dir=state / "logs") as procs:  # fmt: skip
                result = _measure(cfg, url, jobs, rounds, progress)
                rss = max(peak_rss_mb(proc.pid) for proc in procs)
    return {**result, "worker_peak_rss_mb": round(rss, 1), "workers": workers}


def _measure(
    cfg: Config, url: str, jobs: int, rounds: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    """``rounds`` alternating runs of each kind; each kind keeps its best rate, so a burst of
    load from elsewhere on the machine does not decide the ratio."""
    app = create_app(cfg, url)
    wait_for_queues(app, {*cfg.lanes(), NOOP_QUEUE})
    noop_rates: list[float] = []
    lanes_rates: list[float] = []
    with Lanes(cfg, url) as lanes:
        _noop_run(app, min(50, jobs))
        _lanes_run(lanes, min(50, jobs))
        for n in range(1, rounds + 1):
            progress(f"round {n}/{rounds}: plain Celery, {jobs} no-op tasks")
            noop_rates.append(jobs / _noop_run(app, jobs))
            progress(f"round {n}/{rounds}: lanes, {jobs} jobs")
            lanes_rates.append(jobs / _lanes_run(lanes, jobs))
    app.close()
    lanes_rate, noop_rate = max(lanes_rates), max(noop_rates)
    return {
        "jobs": jobs,
        "lanes_jobs_per_s": round(lanes_rate, 1),
        "celery_noop_per_s": round(noop_rate, 1),
        "ratio": round(lanes_rate / noop_rate, 3),
        "rounds": [
            {"lanes_jobs_per_s": round(lane, 1), "celery_noop_per_s": round(noop, 1)}
            for lane, noop in zip(lanes_rates, noop_rates, strict=True)
        ],
    }


def _noop_run(app: Any, n: int) -> float:
    started = time.perf_counter()
    results = [app.send_task(NOOP_TASK, args=[i], queue=NOOP_QUEUE) for i in range(n)]
    for result in results:
        result.get(timeout=120, interval=0.01)
    return time.perf_counter() - started


def _lanes_run(lanes: Lanes, n: int) -> float:
    started = time.perf_counter()
    handles = [
        lanes.submit({"prompt": f"{PROMPTS[i % len(PROMPTS)]} (#{i})", "max_tokens": 64})
        for i in range(n)
    ]
    for handle in handles:
        handle.get(timeout_s=120)
    return time.perf_counter() - started
