"""``lanes bench ratelimit``: how much of a pool's real limits lanes sustains, with no 429s.

The simulator enforces the accounts' limits (token buckets, 429 + retry-after past them) and
answers after ``latency_s``; lanes is configured with the very same limits. A dispatcher keeps
a backlog larger than the limits allow on the pool while several worker processes drain it.
The first minute's burst (both sides start with full buckets) is left out: measuring starts
once the simulator has served ``warmup_s`` worth, then counts requests the simulator answered
200 over ``duration_s``. utilization = achieved / configured RPM.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lanes.bench.harness import bench_redis, derived_config, sim_process, worker_processes
from lanes.broker.app import wait_for_queues
from lanes.client import Lanes
from lanes.deployment import open_deployment
from lanes.kernel.config import Config, SimMode
from lanes.kernel.errors import LanesError
from lanes.sim import SimControl

POOL = "vital"
MODEL = "claude-sonnet-4-5"
CHAIN = "bench-pool"
ACCOUNT_LIMITS = {
    "requests_per_min": 600,
    "input_tokens_per_min": 450_000,
    "output_tokens_per_min": 90_000,
    "concurrency": 0,
}


def ratelimit_config(config: Config, directory: Path, redis_url: str) -> tuple[Config, Path]:
    """The config on ``redis_url``; the pool's members get ACCOUNT_LIMITS, on the simulator,
    with a chain of the pool only."""

    def change(data: dict[str, Any]) -> None:
        data["redis_url"] = redis_url
        data["simulator"].update(mode=SimMode.ALWAYS.value, enforce_limits=True)
        for member in config.members(POOL):
            data["instances"][member]["limits"] = dict(ACCOUNT_LIMITS)
        data["fallback_chains"][CHAIN] = [{"instance": POOL, "model": MODEL}]

    return derived_config(config, directory / "bench-ratelimit.yaml", change)


def run_ratelimit(
    config: Config,
    *,
    workers: int,
    duration_s: float,
    warmup_s: float,
    latency_s: float,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    state = Path(config.state_dir)
    logs = state / "logs"
    with bench_redis(config) as url:
        cfg, path = ratelimit_config(config, state / "bench", url)
        members = cfg.members(POOL)
        env = {"REDIS_URL": url, "LANES_CONFIG": str(path.resolve())}
        with sim_process(path, latency_s=latency_s, limits=True, log_dir=logs, env=env) as sim:
            env["LANES_SIMULATOR__PORT"] = sim.rsplit(":", 1)[1]
            with worker_processes(cfg, members, count=workers, concurrency=cfg.worker.concurrency,
                                  env=env, log_dir=logs):  # fmt: skip
                with open_deployment(cfg, url) as deployment:
                    wait_for_queues(deployment.app, set(members))
                measured = drive(cfg, url, sim, duration_s, warmup_s, progress)
    return {
        **utilization(measured, len(members)),
        "workers": workers,
        "window_s": round(measured["window_s"], 1),
        "latency_s": latency_s,
        "simulator": measured["sim_stats"],
    }


def utilization(measured: dict[str, Any], members: int) -> dict[str, Any]:
    """What :func:`drive` measured against the pool's configured RPM."""
    configured = ACCOUNT_LIMITS["requests_per_min"] * members
    achieved = measured["ok"] * 60.0 / measured["window_s"]
    return {"configured_rpm": configured, "achieved_rpm": round(achieved, 1),
            "utilization": round(achieved / configured, 4),
            "provider_429s": measured["429s"]}  # fmt: skip


def drive(
    cfg: Config,
    url: str,
    sim_url: str,
    duration_s: float,
    warmup_s: float,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Keep a backlog on the pool; sample the simulator's counters around the window."""
    members = cfg.members(POOL)
    stop = threading.Event()
    backlog = int(ACCOUNT_LIMITS["requests_per_min"] * len(members) * 0.5)
    with Lanes(cfg, url) as lanes, SimControl(sim_url) as sim:
        feeder = threading.Thread(target=_feed, args=(lanes, backlog, stop), daemon=True)
        feeder.start()
        try:
            progress(f"warming up {warmup_s:.0f}s (the initial full buckets are not counted)")
            time.sleep(warmup_s)
            start_ok, start_s = _served(sim.stats(), members), time.monotonic()
            progress(f"measuring {duration_s:.0f}s")
            time.sleep(duration_s)
            stats = sim.stats()
            end_ok, end_s = _served(stats, members), time.monotonic()
        finally:
            stop.set()
            feeder.join(timeout=30)
    return {
        "ok": end_ok - start_ok,
        "window_s": end_s - start_s,
        "429s": sum(stats.get(m, {}).get("status_429", 0) for m in members),
        "sim_stats": {m: stats.get(m, {}) for m in members},
    }


def _served(stats: dict[str, dict[str, int]], members: list[str]) -> int:
    return sum(stats.get(m, {}).get("ok", 0) for m in members)


def _feed(lanes: Lanes, backlog: int, stop: threading.Event) -> None:
    """Submit jobs so that about ``backlog`` are always queued or in flight."""
    pending: list[Any] = []
    i = 0
    while not stop.is_set():
        pending = [h for h in pending if not h.ready()]
        for _ in range(max(0, backlog - len(pending))):
            job = {"prompt": f"Check this invariant holds (case {i})", "max_tokens": 64,
                   "instance": POOL, "model": MODEL, "chain": CHAIN}  # fmt: skip
            try:
                pending.append(lanes.submit(job))
            except LanesError:
                break
            i += 1
        stop.wait(0.2)
