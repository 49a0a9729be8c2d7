"""``lanes bench inflight``: how many provider calls one worker process holds at once.

Real parts: a Redis of its own (db 11, flushed), the simulator in its own process answering
every call after ``latency_s`` (10 s), one worker process on one lane with the pool and
concurrency asked for, the limiter on (the lane's limits set just above what the concurrency
needs, so every call reserves and settles as usual). ``jobs`` jobs are queued first; the
worker then starts and runs them. The ideal rate is ``concurrency / latency_s``; the measured
rate is the jobs over the time from the first call's start to the last answer. Calls in
flight are sampled from the simulator every 0.2 s; the worker's peak RSS is its VmHWM.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lanes.bench.harness import (
    bench_redis,
    derived_config,
    peak_rss_mb,
    sim_subprocess,
    worker_processes,
)
from lanes.broker.app import wait_for_queues
from lanes.broker.result import Result
from lanes.client import Lanes
from lanes.kernel.config import Config
from lanes.sim import SimControl

INFLIGHT_DB = 11
LANE = "claude1"
MODEL = "claude-haiku-4-5"
RATIO_BAR = 0.9
RSS_BAR_MB = 400.0


@dataclass(frozen=True)
class InflightSettings:
    concurrency: int = 2000
    pool: str = "gevent"
    latency_s: float = 10.0
    waves: int = 3
    """Jobs queued: ``waves`` times the concurrency."""
    max_tokens: int = 50


def inflight_config(
    config: Config, directory: Path, redis_url: str, settings: InflightSettings
) -> tuple[Config, Path]:
    """Only the bench's lane, its limits a little above what the concurrency needs, on the
    simulator; the response cache and the ledger off (every job is a call, nothing else)."""
    per_min = int(settings.concurrency / settings.latency_s * 60 * 1.2) + 60

    def change(data: dict[str, Any]) -> None:
        data.update(redis_url=redis_url, redis_prefix="bench-inflight")
        data["simulator"].update(mode="always", enforce_limits=True)
        data["cache"] = {**data.get("cache", {}), "enabled": False}
        data["ledger"] = {**data.get("ledger", {}), "enabled": False}
        lane = data["instances"][LANE]
        lane["worker"] = {"pool": settings.pool, "concurrency": settings.concurrency}
        lane["limits"] = {"requests_per_min": per_min, "input_tokens_per_min": per_min * 100,
                          "output_tokens_per_min": per_min * 100,
                          "concurrency": settings.concurrency}  # fmt: skip
        lane["model_limits"] = {}

    return derived_config(config, directory / "inflight-config.yaml", change)


def run_inflight(
    config: Config, settings: InflightSettings, progress: Callable[[str], None]
) -> dict[str, Any]:
    state = Path(config.state_dir)
    home, logs = state / "bench-inflight", state / "logs"
    jobs = settings.concurrency * settings.waves
    with bench_redis(config, db=INFLIGHT_DB) as url:
        cfg, path = inflight_config(config, home, url, settings)
        env = {"REDIS_URL": url, "LANES_CONFIG": str(path.resolve())}
        with sim_subprocess(path, latency_s=settings.latency_s, limits=True, log_dir=logs,
                            env=env) as (sim_url, _sim):  # fmt: skip
            env["LANES_SIMULATOR__PORT"] = sim_url.rsplit(":", 1)[1]
            with Lanes(cfg, url) as lanes, SimControl(sim_url) as sim:
                progress(f"queueing {jobs} jobs")
                handles = [lanes.submit(_job(i, settings)) for i in range(jobs)]
                progress(f"one {settings.pool} worker, concurrency {settings.concurrency}")
                with worker_processes(
                    cfg,
                    [LANE],
                    count=1,
                    concurrency=settings.concurrency,
                    env=env,
                    log_dir=logs,
                    name="bench-inflight",
                ) as procs:
                    wait_for_queues(lanes.app, {LANE})
                    sampler = _Sampler(sim, procs[0].pid)
                    results = [h.get(timeout_s=settings.latency_s * (settings.waves + 6) + 120)
                               for h in handles]  # fmt: skip
                    sampler.stop()
    return report(settings, results, sampler)


def _job(i: int, settings: InflightSettings) -> dict[str, Any]:
    return {"prompt": f"Summarise item {i} in one line", "instance": LANE, "model": MODEL,
            "max_tokens": settings.max_tokens}  # fmt: skip


class _Sampler:
    """Calls in flight at the simulator and the worker's peak RSS, every 0.2 s."""

    def __init__(self, sim: SimControl, pid: int) -> None:
        self.max_in_flight = 0
        self.peak_rss_mb = 0.0
        self._sim, self._pid = sim, pid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            in_flight = self._sim.stats().get(LANE, {}).get("in_flight", 0)
            self.max_in_flight = max(self.max_in_flight, in_flight)
            self.peak_rss_mb = max(self.peak_rss_mb, peak_rss_mb(self._pid))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] if ordered else 0.0


def report(settings: InflightSettings, results: list[Result], sampler: _Sampler) -> dict[str, Any]:
    ok = [r for r in results if r.ok]
    started = min((r.finished_at - r.latency_s for r in ok), default=0.0)
    ended = max((r.finished_at for r in ok), default=0.0)
    rate = len(ok) / (ended - started) if ended > started else 0.0
    ideal = settings.concurrency / settings.latency_s
    return {
        "pool": settings.pool,
        "concurrency": settings.concurrency,
        "latency_s": settings.latency_s,
        "jobs": len(results),
        "ok": len(ok),
        "max_in_flight": sampler.max_in_flight,
        "jobs_per_s": round(rate, 2),
        "ideal_jobs_per_s": round(ideal, 2),
        "ratio_to_ideal": round(rate / ideal, 4) if ideal else 0.0,
        "peak_rss_mb": round(sampler.peak_rss_mb, 1),
        "call_latency_p50_s": round(_quantile([r.latency_s for r in ok], 0.5), 3),
        "call_latency_max_s": round(max((r.latency_s for r in ok), default=0.0), 3),
        "waited_s_max": round(max((r.waited_s for r in ok), default=0.0), 3),
        "ratio_bar": RATIO_BAR,
        "rss_bar_mb": RSS_BAR_MB,
    }
